"""`bosun users ...`, `bosun db upgrade`, `bosun audit`, `bosun drain`: running the box.

The users and db commands go straight to the database, in this process, so the first admin can be
made before any token exists and before an API runs; each change to an account is written to the
audit log with the actor `cli:<login>`. `audit` and `drain` are admin requests of the REST API.
"""

from __future__ import annotations

import getpass
from contextlib import AbstractContextManager
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from api.cli import rest
from api.cli.console import console, fail

app = typer.Typer()
users = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db, name="db")
app.add_typer(users, name="users")

ExpiresDays = Annotated[float | None, typer.Option("--expires-days", min=0.001, max=3650,
                                                      help="the token stops working after this many days")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _session() -> AbstractContextManager[Session]:
    from shared.db import session_scope

    return session_scope(rest.settings().database_url)


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from shared.db.migrate import upgrade_database

    upgrade_database(rest.settings().database_url)
    console.print("database at newest schema")


@users.command("add")
def users_add(name: str, admin: Annotated[bool, typer.Option("--admin", help="may cancel anyone's jobs")] = False,
              expires_days: ExpiresDays = None) -> None:
    """Create a user and print a new API token (the last line of the output)."""
    from shared.accounts import create_user
    from shared.audit import record

    with _session() as s:
        user, token = create_user(session=s, name=name, admin=admin, expires_days=expires_days)
        record(session=s, actor=_actor(), action="user-add", target=f"user {name}", admin=user.is_admin)
        role = "admin" if user.is_admin else "user"
    console.print(f"{role} {escape(name)}: keep this token, it is shown once")
    print(token)


@users.command("token")
def users_token(name: str, expires_days: ExpiresDays = None) -> None:
    """Print a new token of an existing user (the last line of the output)."""
    from shared.accounts import create_token, user_named
    from shared.audit import record

    with _session() as s:
        user = user_named(session=s, name=name)
        if user is None:
            fail(f"no user {name!r}")
        row, token = create_token(session=s, user=user, expires_days=expires_days)
        record(session=s, actor=_actor(), action="token-add", target=f"user {name}", token=row.id)
        until = f"until {row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else "with no expiry"
    console.print(f"token {row.id} of {escape(name)}, valid {until}: keep it, it is shown once")
    print(token)


@users.command("list")
def users_list(name: Annotated[str | None, typer.Argument(help="only this user")] = None) -> None:
    """Users and their tokens (ids, state and lifetime; never the tokens)."""
    from shared.accounts import list_tokens, list_users, token_state

    table = Table("user", "role", "token", "state", "created", "expires")
    with _session() as s:
        tokens = list_tokens(session=s, user=name)
        for user in list_users(session=s, name=name):
            mine = [t for t in tokens if t.user_id == user.id] or [None]
            for t in mine:
                table.add_row(escape(user.name), "admin" if user.is_admin else "user", str(t.id) if t else "",
                              token_state(t) if t else "no token", f"{t.created_at:%Y-%m-%d %H:%M}" if t else "",
                              f"{t.expires_at:%Y-%m-%d %H:%M}" if t and t.expires_at else "")
    console.print(table)


@users.command("revoke")
def users_revoke(token_id: Annotated[int, typer.Argument(help="token id, as in `bosun users list`")]) -> None:
    """Revoke a token: it stops working at once."""
    from shared.accounts import TokenError, revoke_token
    from shared.audit import record

    with _session() as s:
        try:
            row = revoke_token(session=s, token_id=token_id)
        except TokenError as exc:
            fail(str(exc))
        record(session=s, actor=_actor(), action="token-revoke", target=f"user {row.user.name}", token=row.id)
        owner = row.user.name
    console.print(f"token {token_id} of {escape(owner)} revoked")


@app.command()
def audit(limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
          action: Annotated[str | None, typer.Option(help="only this action, e.g. priority, drain")] = None) -> None:
    """The audit log (admins): who changed what, newest first."""
    page = rest.call(lambda c: c.audit(limit=limit, action=action))
    table = Table("time", "actor", "action", "target", "detail")
    for e in page["data"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["detail"].items())
        table.add_row(e["time"][:19], escape(e["actor"]), e["action"], escape(e["target"]), escape(detail))
    console.print(table)
    console.print(f"{page['count']} entries")


@app.command()
def drain(worker_name: Annotated[str, typer.Argument(help="worker name, as in `bosun queue`")],
          undo: Annotated[bool, typer.Option("--undo", help="take work again")] = False) -> None:
    """Drain a worker (admin): it finishes its job and takes no new one."""
    worker = rest.call(lambda c: c.undrain(worker_name) if undo else c.drain(worker_name))
    console.print(f"worker {worker['name']}: {worker['state']}")
