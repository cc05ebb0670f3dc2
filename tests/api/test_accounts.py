"""Accounts and audit: failed logins throttled per address, tokens listed/revoked/expiring, an audit log for admins."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.api.conftest import EVALUATE


def test_failed_authentication_is_throttled_per_address(embedded_settings) -> None:
    from api.main import create_app
    from shared.accounts import create_user
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        _, token = create_user(session=s, name="bob")
    settings = embedded_settings.model_copy(update={"auth_failure_limit": 3, "auth_failure_window_seconds": 1.5})
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    good = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert client.get("/api/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/api/v1/jobs", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 2 and "testclient" in r.json()["detail"]
    assert client.get("/api/v1/jobs", headers=good).status_code == 429  # a right guess is not told apart
    other = TestClient(create_app(settings), raise_server_exceptions=False, client=("10.0.0.9", 5000))
    assert other.get("/api/v1/jobs", headers=good).status_code == 200  # another app process counts its own
    time.sleep(1.6)
    assert client.get("/api/v1/jobs", headers=good).status_code == 200


def test_admin_lists_creates_expires_and_revokes_tokens(api) -> None:
    r = api.get("/api/v1/users", headers=api.as_("bob"))
    assert r.status_code == 403
    made = api.post("/api/v1/users", json={"name": "carol", "expires_days": 0.00002}, headers=api.as_("alice"))
    assert made.status_code == 201 and made.json()["state"] == "active" and made.json()["token"].startswith("bsn_")
    carol = {"Authorization": f"Bearer {made.json()['token']}"}
    assert api.get("/api/v1/jobs", headers=carol).status_code == 200
    time.sleep(2.0)  # 0.00002 days is 1.7 s
    assert api.get("/api/v1/jobs", headers=carol).status_code == 401

    fresh = api.post("/api/v1/users/bob/tokens", json={}, headers=api.as_("alice")).json()
    listed = {u["name"]: u for u in api.get("/api/v1/users", headers=api.as_("alice")).json()["data"]}
    assert [t["state"] for t in listed["carol"]["tokens"]] == ["expired"]
    assert [t["id"] for t in listed["bob"]["tokens"]][-1] == fresh["id"] and "token" not in listed["bob"]["tokens"][0]
    revoked = api.delete(f"/api/v1/tokens/{fresh['id']}", headers=api.as_("alice"))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {fresh['token']}"}).status_code == 401
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).status_code == 200  # bob's first token still works
    assert api.delete("/api/v1/tokens/9999", headers=api.as_("alice")).status_code == 404
    assert api.post("/api/v1/users/nobody/tokens", json={}, headers=api.as_("alice")).status_code == 404


def test_admin_and_owner_actions_are_audited(api, embedded_settings) -> None:
    from shared.db import Worker, session_scope

    with session_scope(embedded_settings.database_url) as s:
        s.add(Worker(name="gpu0@box", queues="gpu", pid=1))
    alice, bob = api.as_("alice"), api.as_("bob")
    mine = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=bob).json()["id"]
    theirs = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=bob).json()["id"]
    own = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=alice).json()["id"]
    assert api.post(f"/api/v1/jobs/{mine}/hold", headers=bob).status_code == 200
    assert api.post(f"/api/v1/jobs/{mine}/release", headers=bob).status_code == 200
    assert api.patch(f"/api/v1/jobs/{mine}/priority", json={"priority": 40}, headers=alice).status_code == 200
    assert api.post("/api/v1/workers/gpu0@box/drain", headers=alice).status_code == 200
    assert api.put("/api/v1/users/bob/limits", json={"max_gpus": 2}, headers=alice).status_code == 200
    assert api.post(f"/api/v1/jobs/{theirs}/cancel", headers=alice).status_code == 200
    assert api.post(f"/api/v1/jobs/{own}/cancel", headers=alice).status_code == 200  # one's own: not audited
    assert api.patch(f"/api/v1/jobs/{mine}/priority", json={"priority": 1}, headers=bob).status_code == 403

    assert api.get("/api/v1/audit", headers=bob).status_code == 403
    page = api.get("/api/v1/audit", headers=alice).json()
    seen = [(e["actor"], e["action"], e["target"]) for e in reversed(page["data"])]
    assert seen == [("bob", "hold", f"job {mine}"), ("bob", "release", f"job {mine}"),
                    ("alice", "priority", f"job {mine}"), ("alice", "drain", "worker gpu0@box"),
                    ("alice", "limits", "user bob"), ("alice", "cancel", f"job {theirs}")]
    assert page["data"][3]["detail"] == {"before": 0, "after": 40}
    only = api.get("/api/v1/audit", params={"action": "drain"}, headers=alice).json()
    assert only["count"] == 1 and only["data"][0]["target"] == "worker gpu0@box"
