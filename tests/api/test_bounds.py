"""Bounds: ids in the database's range, NUL bytes, body and spec size caps, typed timm kwargs,
and only an unreachable database answering 503 — on SQLite and on Postgres."""

from __future__ import annotations

import copy
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EVALUATE

BIG = [2**31, 2**63, 2**64 + 1, 10**30]


@pytest.fixture(params=["sqlite", "postgres"])
def backend_api(request, embedded_settings) -> Iterator[TestClient]:
    """The app with an admin (alice) and a user (bob), on SQLite or on a fresh Postgres database."""
    from api.main import create_app
    from shared.accounts import create_user
    from shared.db import session_scope
    from shared.db.migrate import upgrade
    from tests.stack import postgres_database

    def build(settings) -> TestClient:
        with session_scope(settings.database_url) as s:
            _, alice = create_user(session=s, name="alice", admin=True)
            _, bob = create_user(session=s, name="bob")
        client = TestClient(create_app(settings), raise_server_exceptions=False)
        client.as_ = {"alice": {"Authorization": f"Bearer {alice}"}, "bob": {"Authorization": f"Bearer {bob}"}}.get
        return client

    if request.param == "sqlite":
        yield build(embedded_settings)
        return
    with postgres_database() as url:
        upgrade(url)
        yield build(embedded_settings.model_copy(update={"database_url": url}))


def submit(api, spec=None, **extra):
    return api.post("/api/v1/jobs", json={"type": "evaluate", "spec": spec or EVALUATE, **extra},
                    headers=api.as_("bob"))


def fields(response) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in response.json()["detail"]]


def test_out_of_range_ids_and_offsets_are_422_not_503(backend_api) -> None:
    api = backend_api
    job = submit(api).json()["id"]
    bob = api.as_("bob")
    for value in BIG:
        for path in (f"/api/v1/jobs/{value}", f"/api/v1/jobs/{value}/logs", f"/api/v1/jobs/{value}/artifacts"):
            r = api.get(path, headers=bob)
            assert r.status_code == 422 and "path.job_id" in fields(r), (path, r.text)
        r = api.post(f"/api/v1/jobs/{value}/cancel", headers=bob)
        assert r.status_code == 422, r.text
        for params, name in (({"offset": value}, "query.offset"), ({"limit": value}, "query.limit")):
            r = api.get("/api/v1/jobs", params=params, headers=bob)
            assert r.status_code == 422 and name in fields(r), r.text
        r = submit(api, depends_on=[value])
        assert r.status_code == 422 and "body.depends_on.0" in fields(r), r.text
        r = submit(api, {**EVALUATE, "source": {"kind": "job", "job": value}})
        assert r.status_code == 422 and "body.spec.source.job" in fields(r), r.text
        r = api.get("/api/v1/compare", params={"jobs": f"{job},{value}"}, headers=bob)
        assert r.status_code == 422 and "query.jobs" in fields(r), r.text
        r = api.put("/api/v1/users/bob/limits", json={"max_gpus": value}, headers=api.as_("alice"))
        assert r.status_code == 422 and "body.max_gpus" in fields(r), r.text
    r = api.get(f"/api/v1/jobs/{job}/logs", params={"after": 2**63 - 1}, headers=bob)
    assert r.status_code == 200 and r.json()["count"] == 0
    assert api.get("/api/v1/compare", params={"jobs": "\u00b2"}, headers=bob).status_code == 422
    assert api.get("/api/v1/jobs", headers=bob).json()["count"] == 1


@pytest.mark.parametrize(("spec_change", "field"), [
    ({"dataset": {"kind": "synthetic-maritime", "path": "synthetic\x00-maritime"}},
     "body.spec.dataset.synthetic-maritime.path"),
    ({"source": {"kind": "file", "path": "w\x00.pt"}}, "body.spec.source.path"),
    ({"source": {"kind": "job", "job": 1, "artifact": "check\x00point.pt"}}, "body.spec.source.artifact"),
    ({"backbone": {"name": "resnet18", "kwargs": {"act_layer": "re\x00lu"}}}, "body.spec.backbone.kwargs"),
])
def test_nul_bytes_in_the_spec_are_422_naming_the_field(backend_api, spec_change, field) -> None:
    r = submit(backend_api, {**copy.deepcopy(EVALUATE), **spec_change})
    assert r.status_code == 422 and any(f.startswith(field) for f in fields(r)), r.text
    assert "NUL" in r.text or "kwargs" in field


def test_nul_bytes_in_names_and_parameters_are_422(backend_api) -> None:
    api = backend_api
    job = submit(api).json()["id"]
    r = submit(api, name="evil\x00name")
    assert r.status_code == 422 and "body.name" in fields(r) and "NUL" in r.text
    for path, params, field in (("/api/v1/jobs", {"owner": "b\x00b"}, "query.owner"),
                                ("/api/v1/queue", {"queue": "g\x00pu"}, "query.queue"),
                                ("/api/v1/users/b%00b/limits", {}, "path.name"),
                                (f"/api/v1/jobs/{job}/artifacts/a%00b.png", {}, "path.name")):
        r = api.get(path, params=params, headers=api.as_("bob"))
        assert r.status_code == 422 and field in fields(r), (path, r.text)
    r = api.post("/api/v1/workers/w%00x/drain", headers=api.as_("alice"))
    assert r.status_code == 422 and "path.name" in fields(r)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"img_size": "x" * 20_000}, "body.spec.backbone.kwargs.img_size"),
    ({f"k{i}": 1 for i in range(40)}, "body.spec.backbone.kwargs"),
    ({"nested": {"a": 1}}, "body.spec.backbone.kwargs.nested"),
    ({"img_size": list(range(100))}, "body.spec.backbone.kwargs.img_size"),
    ({"not an identifier": 1}, "body.spec.backbone.kwargs"),
])
def test_timm_kwargs_are_typed_and_bounded(api, kwargs, field) -> None:
    r = submit(api, {**EVALUATE, "backbone": {"name": "resnet18", "kwargs": kwargs}})
    assert r.status_code == 422 and any(f.startswith(field) for f in fields(r)), r.text
    ok = submit(api, {**EVALUATE, "backbone": {"name": "resnet18", "kwargs": {"drop_path_rate": 0.1, "in_chans": 3,
                                                                                  "global_pool": "avg"}}})
    assert ok.status_code == 201, ok.text


def test_spec_over_its_cap_is_422(api) -> None:
    spec = {**EVALUATE, "name_padding": "x" * 70_000}
    r = submit(api, spec)
    assert r.status_code == 422 and "body.spec" in fields(r) and "BOSUN_MAX_SPEC_BYTES" in r.text


def test_body_over_the_cap_is_413_without_reading_it(api) -> None:
    body = b'{"type": "evaluate", "spec": {"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    started = time.perf_counter()
    r = api.post("/api/v1/jobs", content=body, headers={**api.as_("bob"), "content-type": "application/json"})
    assert r.status_code == 413 and "BOSUN_MAX_REQUEST_BYTES" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"type": "evaluate", "spec": {"pad": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}}'

    r = api.post("/api/v1/jobs", content=chunks(), headers={**api.as_("bob"), "content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert time.perf_counter() - started < 5
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0


def test_body_cap_refuses_a_declared_length_before_the_body_is_sent(embedded_settings) -> None:
    """Over a real socket: the 413 comes back while the client has sent only the headers."""
    from tests.stack import stack_env, start_api

    env = stack_env(embedded_settings.home, data_root=str(embedded_settings.data_root), max_request_bytes="4096")
    proc, url = start_api(env, embedded_settings.home / "api.log")
    try:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 64000000\r\n\r\n")
            answer = sock.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 413"), answer
    finally:
        proc.kill()


def test_only_an_unreachable_database_is_503(backend_api) -> None:
    """A healthy database answers 4xx for values it refuses; the 503 test of a dead one is in test_bad_input."""
    r = backend_api.get(f"/api/v1/jobs/{2**40}", headers=backend_api.as_("bob"))
    assert r.status_code == 422 and "Retry-After" not in r.headers
