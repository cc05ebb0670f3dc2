#!/usr/bin/env bash
# Makes .venv of this checkout: a small virtual environment of its own that layers the checkout
# on top of the cached, lock-keyed environment ($1). The cached one is shared between clones and
# never has bosun installed in it, so each checkout's python and `bosun` run that checkout's code.
set -euo pipefail
cache=$1
python=${2:-python3.11}
root=$(pwd -P)
rm -rf .venv
"$python" -m venv --without-pip .venv
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cache_site=$("$cache/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# .pth files run in name order: the checkout goes on sys.path before the cached packages.
echo "$root" > "$site/00-bosun-checkout.pth"
echo "import site; site.addsitedir('$cache_site')" > "$site/10-bosun-cache.pth"
# Tools the tests call by path (hadolint, moto_server, ...), from the cached environment.
for tool in "$cache"/bin/*; do
    name=$(basename "$tool")
    [[ -e .venv/bin/$name || $name == activate* || $name == __pycache__ || $name == python* || $name == pip* ]] || ln -s "$tool" ".venv/bin/$name"
done
cat > .venv/bin/bosun <<PY
#!$root/.venv/bin/python
import sys
from api.cli import main
sys.exit(main())
PY
chmod +x .venv/bin/bosun
echo "$cache" > .venv/cache
