"""Notification channels at the API: who may see and change them, what is refused (422 naming the
field), the PATCH-like update, and the test message and its state in the recent list."""

from __future__ import annotations

import pytest

from shared.notifications import EVENTS

HOOK = "https://chat.lab.example/hooks/abc123"


def url(name: str = "bob") -> str:
    return f"/api/v1/users/{name}/notifications"


def test_a_user_sets_their_channels_and_a_field_left_out_keeps_its_value(api, embedded_settings) -> None:
    embedded_settings.smtp_host = "smtp.lab.example"
    fresh = api.get(url(), headers=api.as_("bob")).json()
    assert (fresh["webhook_url"], fresh["email"], fresh["events"], fresh["recent"]) == (None, None, list(EVENTS), [])
    r = api.put(url(), json={"webhook_url": HOOK, "email": "bob@lab.example"}, headers=api.as_("bob"))
    assert r.status_code == 200, r.json()
    r = api.put(url(), json={"events": ["failed", "time_limit"]}, headers=api.as_("bob"))
    assert (r.json()["webhook_url"], r.json()["email"], r.json()["events"]) == (HOOK, "bob@lab.example",
                                                                              ["failed", "time_limit"])
    assert r.json()["email_enabled"] is True
    r = api.put(url(), json={"email": None, "events": None}, headers=api.as_("bob"))
    assert (r.json()["webhook_url"], r.json()["email"], r.json()["events"]) == (HOOK, None, list(EVENTS))


def test_only_the_user_or_an_admin(api) -> None:
    assert api.get(url("alice"), headers=api.as_("bob")).status_code == 403
    assert api.put(url("alice"), json={"webhook_url": HOOK}, headers=api.as_("bob")).status_code == 403
    assert api.put(url("bob"), json={"webhook_url": HOOK}, headers=api.as_("alice")).status_code == 200
    audit = api.get("/api/v1/audit", params={"action": "notifications"}, headers=api.as_("alice")).json()
    assert audit["data"][0]["target"] == "user bob" and audit["data"][0]["actor"] == "alice"
    assert api.get(url("nobody"), headers=api.as_("alice")).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"webhook_url": "ftp://lab.example/hook"}, "webhook_url"),
    ({"webhook_url": "http://user:pw@lab.example/hook"}, "webhook_url"),
    ({"webhook_url": "https://lab.example/a b"}, "webhook_url"),
    ({"webhook_url": "https://" + "a" * 2000}, "webhook_url"),
    ({"email": "bob"}, "email"),
    ({"email": "bob@lab.example\r\nBcc: eve@evil.example"}, "email"),
    ({"events": ["finished"]}, "events"),
    ({"events": ["failed", "failed"]}, "events"),
    ({"colour": "red"}, "colour"),
])
def test_bad_channels_are_a_422_naming_the_field(api, embedded_settings, body, field) -> None:
    embedded_settings.smtp_host = "smtp.lab.example"
    r = api.put(url(), json=body, headers=api.as_("bob"))
    assert r.status_code == 422, r.json()
    assert all(e["loc"][:2] == ["body", field] for e in r.json()["detail"]), r.json()


def test_email_is_refused_where_the_server_sends_none(api) -> None:
    r = api.put(url(), json={"email": "bob@lab.example"}, headers=api.as_("bob"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "email"]
    assert "BOSUN_SMTP_HOST" in r.json()["detail"][0]["msg"]


def test_a_test_message_is_queued_per_channel_and_listed(api, embedded_settings) -> None:
    assert api.post(url() + "/test", headers=api.as_("bob")).status_code == 409  # no channel yet
    api.put(url(), json={"webhook_url": HOOK}, headers=api.as_("bob"))
    r = api.post(url() + "/test", headers=api.as_("bob"))
    assert r.status_code == 202 and r.json() == {"queued": 1}
    [message] = api.get(url(), headers=api.as_("bob")).json()["recent"]
    assert (message["event"], message["channel"], message["target"], message["state"], message["job"]) == (
        "test", "webhook", HOOK, "pending", None)
