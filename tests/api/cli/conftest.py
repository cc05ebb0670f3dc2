"""The `bosun` commands run in this process (typer's runner) against the app of `tests.api.conftest`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

WIDE = {"COLUMNS": "400"}


def bosun(*args: str, env: dict[str, str] | None = None) -> Result:
    """`bosun ARGS` in this process, on a terminal wide enough that tables never wrap."""
    from api.cli import app

    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})


@pytest.fixture
def cli_as(api, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`cli_as("bob")`: the REST commands from then on reach the test app as bob."""
    from api.cli import rest
    from api.client import Client

    def as_user(who: str) -> None:
        def connect() -> Client:  # the CLI closes its client after each command: a fresh one on the same app
            client = Client("http://testserver", api.tokens[who])
            client.http = TestClient(api.app, headers=api.as_(who))
            return client

        monkeypatch.setattr(rest, "connect", connect)

    return as_user
