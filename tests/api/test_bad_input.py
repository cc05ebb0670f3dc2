"""Bad input gets a 4xx naming the field, never a 500."""

from __future__ import annotations

import copy

import pytest

from tests.api.conftest import EVALUATE


def spec(**changes):
    out = copy.deepcopy(EVALUATE)
    for path, value in changes.items():
        node = out
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def locs(response) -> list[str]:
    return [".".join(str(p) for p in err["loc"]) for err in response.json()["detail"]]


def test_valid_submission_is_accepted(api) -> None:
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "queued" and body["owner"] == "bob"
    assert body["spec"]["knn"] == {"k": [10, 20, 100, 200], "temperature": 0.07}  # defaults resolved and stored


def test_malformed_json(api) -> None:
    r = api.post("/api/v1/jobs", content=b'{"type": "evaluate", "spec": ',
                 headers={**api.as_("bob"), "content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "train", "spec": EVALUATE}, "body.type"),
    ({"type": "evaluate", "spec": "resnet"}, "body.spec"),
    ({"type": "evaluate"}, "body.spec"),
    ({"type": "evaluate", "spec": EVALUATE, "priority": "high"}, "body.priority"),
    ({"type": "evaluate", "spec": EVALUATE, "depends_on": [-1, "x"]}, "body.depends_on.1"),
    ({"type": "evaluate", "spec": EVALUATE, "colour": "red"}, "body.colour"),
    ({"type": "evaluate", "spec": spec(backbone__name="resnet9000")}, "body.spec.backbone.name"),
    ({"type": "evaluate", "spec": spec(dataset__kind="mnist")}, "body.spec.dataset"),
    ({"type": "evaluate", "spec": spec(dataset__path="../../etc")}, "body.spec.dataset.synthetic-maritime.path"),
    ({"type": "evaluate", "spec": spec(dataset__path="/etc")}, "body.spec.dataset.synthetic-maritime.path"),
    ({"type": "evaluate", "spec": spec(dataset__path="no-such-set")}, "body.spec.dataset.path"),
    ({"type": "evaluate", "spec": spec(batch_size=-1)}, "body.spec.batch_size"),
    ({"type": "evaluate", "spec": spec(batch_size=10**9)}, "body.spec.batch_size"),
    ({"type": "evaluate", "spec": spec(dataset__image_size=100000)}, "body.spec.dataset.synthetic-maritime.image_size"),
    ({"type": "evaluate", "spec": spec(knn__k=[0])}, "body.spec.knn.k"),
    ({"type": "evaluate", "spec": spec(source={"kind": "file"})}, "body.spec.source"),
    ({"type": "evaluate", "spec": spec(source={"kind": "file", "path": "weights.pt"})}, "body.spec.source.path"),
    ({"type": "evaluate", "spec": spec(source={"kind": "job", "job": 999})}, "body.spec.source.job"),
    ({"type": "evaluate", "spec": EVALUATE, "depends_on": [999]}, "body.depends_on"),
    ({"type": "pretrain", "spec": {"method": "dino", "backbone": {"name": "resnet18"},
                                   "dataset": {"kind": "synthetic-maritime"}, "dino": {"blur_sigma": [2.0, 0.1]}}},
     "body.spec.dino.blur_sigma"),
])
def test_bad_input_names_the_field(api, body, field) -> None:
    r = api.post("/api/v1/jobs", json=body, headers=api.as_("bob"))
    assert r.status_code == 422, r.text
    assert field in locs(r), (field, r.json())
    assert api.get("/api/v1/jobs", headers=api.as_("bob")).json()["count"] == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWxpY2U6eA=="}])
def test_missing_or_wrong_token(api, headers) -> None:
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=headers)
    assert r.status_code == 401
    assert "Authorization" in r.json()["detail"]
    assert api.get("/api/v1/jobs", headers=headers).status_code == 401


def test_unknown_job_is_404(api) -> None:
    r = api.get("/api/v1/jobs/4242", headers=api.as_("bob"))
    assert r.status_code == 404 and "4242" in r.json()["detail"]
    assert api.get("/api/v1/jobs/0", headers=api.as_("bob")).status_code == 422
    assert api.get("/api/v1/jobs/1/artifacts/x.png", headers=api.as_("bob")).status_code == 404


def test_only_owner_or_admin_may_cancel(api) -> None:
    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("alice")).json()
    assert api.get(f"/api/v1/jobs/{job['id']}", headers=api.as_("bob")).status_code == 200  # everyone reads
    r = api.post(f"/api/v1/jobs/{job['id']}/cancel", headers=api.as_("bob"))
    assert r.status_code == 403 and "alice" in r.json()["detail"]
    mine = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()
    r = api.post(f"/api/v1/jobs/{mine['id']}/cancel", headers=api.as_("alice"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["error"] == "cancelled by alice"
    again = api.post(f"/api/v1/jobs/{mine['id']}/cancel", headers=api.as_("bob"))
    assert again.status_code == 409


def test_filters_and_pagination(api) -> None:
    for who in ("alice", "bob", "bob"):
        api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_(who))
    page = api.get("/api/v1/jobs", params={"owner": "bob", "limit": 1}, headers=api.as_("alice")).json()
    assert page["count"] == 2 and len(page["data"]) == 1 and page["data"][0]["owner"] == "bob"
    assert api.get("/api/v1/jobs", params={"status": "running"}, headers=api.as_("bob")).json()["count"] == 0
    assert api.get("/api/v1/jobs", params={"status": "sleeping"}, headers=api.as_("bob")).status_code == 422
    assert api.get("/api/v1/jobs", params={"limit": 0}, headers=api.as_("bob")).status_code == 422


def test_database_down_is_503(embedded_settings) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    settings = embedded_settings.model_copy(update={"database_url": "postgresql+psycopg://bosun:x@127.0.0.1:9/bosun"})
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    r = client.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 503 and "database" in r.json()["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unreachable")
    assert client.get("/healthz").status_code == 200


def test_broker_down_accepts_and_the_job_waits_in_the_database(api, embedded_settings) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from shared.db import Worker, session_scope
    from shared.db.models import utcnow
    from shared.dispatch import run_pass
    from shared.queueing import BrokerUnavailable

    settings = embedded_settings.model_copy(update={"broker_url": "redis://127.0.0.1:9/0"})
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    r = client.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob"))
    assert r.status_code == 201 and r.json()["status"] == "queued" and r.json()["enqueued_at"] is None
    assert client.get("/readyz").json()["checks"]["broker"].startswith("unreachable")
    with session_scope(settings.database_url) as s:
        s.add(Worker(name="w1@box", queues="gpu,cpu", pid=1, heartbeat_at=utcnow()))
    with session_scope(settings.database_url) as s, pytest.raises(BrokerUnavailable):
        run_pass(session=s, settings=settings)  # the pass cannot send it: the job stays unsent for the next one
    job = api.get(f"/api/v1/jobs/{r.json()['id']}", headers=api.as_("bob")).json()
    assert job["status"] == "queued" and job["enqueued_at"] is None


def test_robustness_inputs_are_checked_and_become_dependencies(api) -> None:
    robust = {**EVALUATE, "dataset": {"kind": "cifar10", "path": "synthetic-maritime"},
              "protocols": ["knn", "robustness"],
              "robustness": {"cifar10c_path": "no-cifar10c", "corruptions": ["fog"], "severities": [1]}}
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": robust}, headers=api.as_("bob"))
    assert r.status_code == 422 and "body.spec.robustness.cifar10c_path" in locs(r), r.json()

    baseline = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=api.as_("bob")).json()
    spec_b = {**EVALUATE, "protocols": ["knn", "robustness"],
              "robustness": {"baseline_job": baseline["id"], "corruptions": ["fog"], "severities": [1]}}
    job = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": spec_b}, headers=api.as_("bob")).json()
    assert job["depends_on"] == [baseline["id"]]
    spec_b["robustness"]["baseline_job"] = 999
    r = api.post("/api/v1/jobs", json={"type": "evaluate", "spec": spec_b}, headers=api.as_("bob"))
    assert r.status_code == 422 and "body.spec.robustness.baseline_job" in locs(r)


def test_a_database_restart_costs_no_request(pg_url, embedded_settings) -> None:
    """Every pooled connection dies with the server; the next requests still answer, none with a 503."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from shared.accounts import create_user
    from shared.db import session_scope
    from shared.db.migrate import upgrade
    from tests.proxy import TcpProxy

    proxy, url = TcpProxy.in_front_of(pg_url)
    try:
        upgrade(url)
        with session_scope(url) as s:
            _, token = create_user(session=s, name="ana")
        client = TestClient(create_app(embedded_settings.model_copy(update={"database_url": url})),
                            raise_server_exceptions=False)
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=auth).status_code == 201
        proxy.cut()
        assert client.get("/api/v1/jobs", headers=auth).status_code == 503  # down: said so
        proxy.restore()
        answers = [client.get("/api/v1/jobs", headers=auth).status_code,
                   client.post("/api/v1/jobs", json={"type": "evaluate", "spec": EVALUATE}, headers=auth).status_code]
        assert answers == [200, 201]
        assert client.get("/api/v1/jobs", headers=auth).json()["count"] == 2
    finally:
        proxy.close()


@pytest.mark.parametrize(("body", "loc", "hint"), [
    ({"type": "evalute", "spec": {}}, ["body", "type"], "did you mean 'evaluate'?"),
    ({"type": "evaluate", "spec": {**EVALUATE, "knn": {"kk": 3}}}, ["body", "spec", "knn", "kk"], "did you mean 'k'?"),
    ({"type": "evaluate", "spec": EVALUATE, "prioirty": 3}, ["body", "prioirty"], "did you mean 'priority'?"),
    ({"type": "evaluate", "spec": {**EVALUATE, "backbone": {"name": "convnextv2_ato"}}},
     ["body", "spec", "backbone", "name"], "did you mean 'convnextv2_atto'"),
    ({"type": "evaluate", "spec": {**EVALUATE, "zzzzzz": 1}}, ["body", "spec", "zzzzzz"], None),
])
def test_a_misspelt_name_is_answered_with_the_nearest_valid_one(api, body, loc, hint) -> None:
    r = api.post("/api/v1/jobs/validate", json=body, headers=api.as_("bob"))
    assert r.status_code == 422, r.json()
    [error] = [e for e in r.json()["detail"] if e["loc"] == loc]
    assert (hint in error["msg"]) if hint else ("did you mean" not in error["msg"]), error
