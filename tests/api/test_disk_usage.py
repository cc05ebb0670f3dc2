"""Bytes in the store per user and job: GET /api/v1/usage/disk and the bosun_store_bytes gauge, over
objects a real worker context wrote to the embedded store (tests.api.conftest.stored_objects)."""

from __future__ import annotations


def store_sizes(settings, job_id: int) -> tuple[int, int]:
    """(artifact bytes, checkpoint bytes) of a job as the store's folder holds them."""
    from pathlib import Path

    root = Path(settings.storage_url.removeprefix("file://")) / f"jobs/{job_id}"
    artifacts = sum(p.stat().st_size for p in (root / "artifacts").iterdir())
    return artifacts, sum(p.stat().st_size for p in (root / "checkpoints").glob("*.pt"))


def test_route_sums_what_the_store_holds_per_job_and_user(api, embedded_settings, stored_objects) -> None:
    jobs = stored_objects
    everyone = api.get("/api/v1/usage/disk", headers=api.as_("alice")).json()
    by_id = {row["id"]: row for row in everyone["data"]}
    assert set(by_id) == set(stored_objects.values()) and everyone["count"] == 3
    big = by_id[stored_objects["bob-big"]]
    artifacts, checkpoints = store_sizes(embedded_settings, stored_objects["bob-big"])
    assert big["artifact_bytes"] == artifacts == 5_000 and big["checkpoint_bytes"] == checkpoints
    assert 6_000_000 < checkpoints < 6_100_000  # two of the three checkpoints are left after pruning
    assert [row["id"] for row in everyone["data"]] == [jobs["bob-big"], jobs["alice"], jobs["bob-small"]]
    users = {u["user"]: u for u in everyone["users"]}
    assert users["bob"]["jobs"] == 2
    assert users["bob"]["total_bytes"] == sum(by_id[jobs[name]]["total_bytes"] for name in ("bob-big", "bob-small"))
    assert everyone["total_bytes"] == sum(u["total_bytes"] for u in everyone["users"])

    own = api.get("/api/v1/usage/disk", headers=api.as_("bob")).json()
    assert {row["id"] for row in own["data"]} == {stored_objects["bob-big"], stored_objects["bob-small"]}
    assert [u["user"] for u in own["users"]] == ["bob"]
    assert api.get("/api/v1/usage/disk", params={"limit": 1}, headers=api.as_("bob")).json()["count"] == 2


def test_store_bytes_gauge_is_what_the_store_holds(api, embedded_settings, stored_objects) -> None:
    held = {name: sum(store_sizes(embedded_settings, job_id)) for name, job_id in stored_objects.items()}
    lines = {line.split()[0]: float(line.split()[1]) for line in api.get("/metrics").text.splitlines()
             if line.startswith("bosun_store_bytes{")}
    assert lines == {'bosun_store_bytes{user="alice"}': held["alice"],
                     'bosun_store_bytes{user="bob"}': held["bob-big"] + held["bob-small"]}
    assert held["bob-big"] > 6_000_000 > held["alice"] > 1_500_000
