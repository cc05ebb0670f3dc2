"""`bosun db upgrade` and `bosun users ...`: the box's administration, straight to the database, as a process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.stack import ROOT, bosun, stack_env


def test_db_upgrade_makes_the_state_folder_and_the_newest_schema(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "home"
    assert "database at newest schema" in bosun(stack_env(home), "db", "upgrade")
    with sqlite3.connect(home / "bosun.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    assert {"jobs", "users", "api_tokens", "audit_log"} <= tables
    assert revision == sorted(p.name for p in (ROOT / "shared" / "migrations" / "versions").glob("0*.py"))[-1][:4]


def test_cli_users_list_token_revoke_and_audit(embedded_settings) -> None:
    env = stack_env(embedded_settings.home, data_root=str(embedded_settings.data_root))
    token = bosun(env, "users", "add", "dora").strip().splitlines()[-1]
    second = bosun(env, "users", "token", "dora", "--expires-days", "30")
    assert "valid until" in second and second.strip().splitlines()[-1].startswith("bsn_")
    listing = bosun(env, "users", "list", "dora")
    assert listing.count("active") == 2 and token not in listing
    assert "token 1 of dora revoked" in bosun(env, "users", "revoke", "1")
    assert "revoked" in bosun(env, "users", "list", "dora")

    from shared.audit import audit_entries
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        entries, _ = audit_entries(session=s, limit=10)
        actions = [(e.actor.split(":")[0], e.action, e.target) for e in reversed(entries)]
    assert actions == [("cli", "user-add", "user dora"), ("cli", "token-add", "user dora"),
                       ("cli", "token-revoke", "user dora")]


def test_unknown_user_or_token_ends_with_an_error(embedded_settings) -> None:
    env = stack_env(embedded_settings.home)
    for args, message in ((["users", "token", "nobody"], "error: no user 'nobody'"),
                          (["users", "revoke", "99"], "error: no token 99")):
        out = subprocess.run([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 1 and message in out.stdout, (out.stdout, out.stderr)
