"""`bosun users ...` and `bosun audit`: accounts on the box (straight to the database) and the audit log (REST).

The users commands run where the database is reachable, so the first admin can be made before
any token exists; each change is written to the audit log with the actor `cli:<login>`.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

users_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
console = Console()

ExpiresDays = Annotated[float | None, typer.Option("--expires-days", min=0.001, max=3650,
                                                      help="the token stops working after this many days")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _session():  # noqa: ANN202
    from api.cli import _settings
    from shared.db import session_scope

    return session_scope(_settings().database_url)


@users_app.command("add")
def users_add(name: str, admin: Annotated[bool, typer.Option("--admin", help="may cancel anyone's jobs")] = False,
              expires_days: ExpiresDays = None) -> None:
    """Create a user and print a new API token (the last line of the output)."""
    from api.auth import create_user
    from shared.audit import record

    with _session() as s:
        user, token = create_user(session=s, name=name, admin=admin, expires_days=expires_days)
        record(session=s, actor=_actor(), action="user-add", target=f"user {name}", admin=user.is_admin)
        role = "admin" if user.is_admin else "user"
    console.print(f"{role} {escape(name)}: keep this token, it is shown once")
    print(token)


@users_app.command("token")
def users_token(name: str, expires_days: ExpiresDays = None) -> None:
    """Print a new token of an existing user (the last line of the output)."""
    from sqlalchemy import select

    from api.auth import create_token
    from shared.audit import record
    from shared.db import User

    with _session() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            console.print(f"[red]error:[/red] no user {escape(name)!r}")
            raise typer.Exit(1)
        row, token = create_token(session=s, user=user, expires_days=expires_days)
        record(session=s, actor=_actor(), action="token-add", target=f"user {name}", token=row.id)
        until = f"until {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else "with no expiry"
    console.print(f"token {row.id} of {escape(name)}, valid {until}: keep it, it is shown once")
    print(token)


@users_app.command("list")
def users_list(name: Annotated[str | None, typer.Argument(help="only this user")] = None) -> None:
    """Users and their tokens (ids, state and lifetime; never the tokens)."""
    from sqlalchemy import select

    from api.auth import list_tokens, token_state
    from shared.db import User

    table = Table("user", "role", "token", "state", "created", "expires")
    with _session() as s:
        users = s.scalars(select(User).order_by(User.name)).all()
        tokens = list_tokens(session=s, user=name)
        for user in users:
            if name and user.name != name:
                continue
            mine = [t for t in tokens if t.user_id == user.id] or [None]
            for t in mine:
                table.add_row(escape(user.name), "admin" if user.is_admin else "user", str(t.id) if t else "",
                              token_state(t) if t else "no token", f"{t.created_at:%Y-%m-%d %H:%M}" if t else "",
                              f"{t.expires_at:%Y-%m-%d %H:%M}" if t and t.expires_at else "")
    console.print(table)


@users_app.command("revoke")
def users_revoke(token_id: Annotated[int, typer.Argument(help="token id, as in `bosun users list`")]) -> None:
    """Revoke a token: it stops working at once."""
    from api.auth import TokenError, revoke_token
    from shared.audit import record

    with _session() as s:
        try:
            row = revoke_token(session=s, token_id=token_id)
        except TokenError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        record(session=s, actor=_actor(), action="token-revoke", target=f"user {row.user.name}", token=row.id)
        owner = row.user.name
    console.print(f"token {token_id} of {escape(owner)} revoked")


def audit(limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
          action: Annotated[str | None, typer.Option(help="only this action, e.g. priority, drain")] = None) -> None:
    """The audit log (admins): who changed what, newest first."""
    from api.cli import _api

    page = _api(lambda c: c.audit(limit=limit, action=action))
    table = Table("time", "actor", "action", "target", "detail")
    for e in page["data"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items())
        table.add_row(e["time"][:19], escape(e["actor"]), e["action"], escape(e["target"]), escape(detail))
    console.print(table)
    console.print(f"{page['count']} entries")
