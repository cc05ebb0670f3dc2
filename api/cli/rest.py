"""How the commands reach the REST API: the settings' `BOSUN_API_URL`, the caller's token, and one
call whose error ends the command with the API's message (exit code 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from api.cli.console import fail
from api.client import ApiError, Client
from shared.settings import Settings, get_settings

T = TypeVar("T")


def settings() -> Settings:
    """The settings of this process (read again after `bosun serve --home` changed `BOSUN_HOME`)."""
    return get_settings()


def saved_token() -> str:
    """`BOSUN_TOKEN`, else the admin token `bosun serve` saved in the state folder, else none."""
    current = settings()
    if current.token:
        return current.token
    saved = Path(current.home) / "token"
    return saved.read_text().strip() if saved.exists() else ""


def connect() -> Client:
    """A client of the API at `BOSUN_API_URL` with the caller's token; the caller closes it."""
    return Client(settings().api_url, saved_token())


def call(request: Callable[[Client], T]) -> T:
    """One request of the API on a client of its own; an error ends the command with the API's message."""
    with connect() as client:
        try:
            return request(client)
        except ApiError as exc:
            fail(str(exc))
