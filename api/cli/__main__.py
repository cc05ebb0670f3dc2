"""`python -m api.cli`: the `bosun` command, as the tests and `deploy/ci/checkout-venv.sh` run it."""

from api.cli import main

main()
