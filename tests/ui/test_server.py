"""The pages' server side without a browser: sessions and CSRF, the actions' permissions, the
downsampled series, the spec diff and a landscape's surface from its tiles."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from shared.accounts import create_token, create_user, revoke_token
from shared.db import ApiToken, Job, JobMetric, session_scope
from shared.db.models import utcnow
from shared.job_lifecycle import create_job
from tests.ui.seed import EVALUATE, LANDSCAPE, resolved, seed_tiles


@pytest.fixture
def ui(embedded_settings):
    """The app, users alice (admin) and bob, and a queued job of bob's."""
    from api.main import create_app

    with session_scope(embedded_settings.database_url) as s:
        alice, alice_token = create_user(session=s, name="alice", admin=True)
        bob, bob_token = create_user(session=s, name="bob")
        job = create_job(session=s, job_type="evaluate", spec=resolved("evaluate", EVALUATE), owner=bob, name="knn")
    client = TestClient(create_app(embedded_settings), base_url="http://bosun.test")
    client.tokens, client.job, client.settings = {"alice": alice_token, "bob": bob_token}, job.id, embedded_settings
    return client


def sign_in(client: TestClient, who: str) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"token": client.tokens[who], "csrf": csrf, "next": "/queue"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queue"
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/jobs").text).group(1)


def job_status(client: TestClient) -> tuple[str, bool, int]:
    with session_scope(client.settings.database_url) as s:
        job = s.get(Job, client.job)
        return job.status, job.held, job.priority


def test_pages_need_a_session_and_the_cookie_is_signed(ui) -> None:
    r = ui.get(f"/jobs/{ui.job}?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=%2Fjobs%2F{ui.job}%3Fx%3D1"
    assert ui.get(f"/jobs/{ui.job}/series.json").status_code == 401
    assert ui.get("/jobs/table", headers={"HX-Request": "true"}).headers["HX-Redirect"].startswith("/login")
    sign_in(ui, "bob")
    cookie = ui.cookies["bosun_session"]
    assert ui.tokens["bob"] not in cookie
    token_id, expires, signature = cookie.split(".")
    assert int(expires) - utcnow().timestamp() == pytest.approx(7 * 86400, abs=60)
    assert ui.get("/jobs").status_code == 200
    flipped = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    for forged in (f"{token_id}.{int(expires) + 86400}.{signature}", f"{int(token_id) + 1}.{expires}.{signature}",
                   f"{token_id}.{expires}.{flipped}", "garbage", f"{10**30}.{expires}.{signature}"):
        ui.cookies.clear()
        ui.cookies.set("bosun_session", forged)
        assert ui.get("/jobs", follow_redirects=False).status_code == 303, forged


def test_revoking_or_expiring_the_token_ends_its_sessions(ui) -> None:
    with session_scope(ui.settings.database_url) as s:
        bob = s.get(ApiToken, 2).user
        row, short = create_token(session=s, user=bob, expires_days=1 / 24)
    ui.tokens["short"] = short
    sign_in(ui, "short")
    assert int(ui.cookies["bosun_session"].split(".")[1]) - utcnow().timestamp() == pytest.approx(3600, abs=60)
    with session_scope(ui.settings.database_url) as s:
        s.execute(update(ApiToken).where(ApiToken.id == row.id).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert ui.get("/jobs", follow_redirects=False).status_code == 303
    sign_in(ui, "bob")
    with session_scope(ui.settings.database_url) as s:
        revoke_token(session=s, token_id=2)
    assert ui.get("/jobs", follow_redirects=False).status_code == 303


def test_sign_in_refuses_bad_tokens_forms_and_foreign_targets(ui) -> None:
    form = ui.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    r = ui.post("/login", data={"token": "bsn_wrong", "csrf": csrf})
    assert r.status_code == 401 and "not valid" in r.text
    ui.get("/login")
    assert ui.post("/login", data={"token": ui.tokens["bob"], "csrf": "other"}).status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', ui.get("/login").text).group(1)
    r = ui.post("/login", data={"token": ui.tokens["bob"], "csrf": csrf, "next": "//evil.example/x"},
                follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/jobs"


def test_failed_sign_ins_count_towards_the_auth_throttle(embedded_settings) -> None:
    from api.main import create_app

    client = TestClient(create_app(embedded_settings.model_copy(update={"auth_failure_limit": 2})))
    for expected in (401, 401, 429):
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
        assert client.post("/login", data={"token": "bsn_wrong", "csrf": csrf}).status_code == expected


def test_posts_need_the_csrf_token_and_this_origin(ui) -> None:
    csrf = sign_in(ui, "bob")
    assert ui.post(f"/jobs/{ui.job}/hold", data={}).status_code == 403
    foreign = ui.post(f"/jobs/{ui.job}/hold", data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    assert job_status(ui) == ("queued", False, 0)
    r = ui.post(f"/jobs/{ui.job}/hold", headers={"X-CSRF-Token": csrf, "Origin": "http://bosun.test"},
                follow_redirects=False)
    assert r.status_code == 303 and job_status(ui) == ("queued", True, 0)
    assert "held" in ui.get(r.headers["location"]).text


def test_actions_follow_the_rest_permissions(ui) -> None:
    csrf = sign_in(ui, "bob")
    assert ui.post(f"/jobs/{ui.job}/priority", data={"csrf": csrf, "priority": "5"}).status_code == 403
    assert "Set priority" not in ui.get(f"/jobs/{ui.job}").text
    r = ui.post(f"/jobs/{ui.job}/rerun", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{ui.job + 1}"
    csrf = sign_in(ui, "alice")
    assert ui.post(f"/jobs/{ui.job}/priority", data={"csrf": csrf, "priority": "500"}).status_code == 422
    ui.post(f"/jobs/{ui.job}/priority", data={"csrf": csrf, "priority": "7"})
    ui.post(f"/jobs/{ui.job}/release", data={"csrf": csrf})
    assert job_status(ui) == ("queued", False, 7)
    ui.post(f"/jobs/{ui.job}/cancel", data={"csrf": csrf})
    page = ui.post(f"/jobs/{ui.job}/hold", data={"csrf": csrf}).text  # a cancelled job cannot be held
    assert "Not done: job" in page and "is cancelled, not queued" in page
    assert ui.get("/jobs/999").status_code == 404 and "does not exist" in ui.get("/jobs/999").text
    audit = ui.get("/api/v1/audit", headers={"Authorization": f"Bearer {ui.tokens['alice']}"}).json()["data"]
    assert {"priority", "release", "cancel"} <= {e["action"] for e in audit}  # recorded as from the REST API


def test_series_are_downsampled_in_the_database_keeping_extremes(embedded_settings) -> None:
    from api.ui.series import MAX_POINTS, metric_series

    with session_scope(embedded_settings.database_url) as s:
        user, _ = create_user(session=s, name="u")
        job = create_job(session=s, job_type="evaluate", spec={}, owner=user)
        spikes = {31_337: 5.0, 77_001: -4.0}
        values = [math.sin(k / 500) + spikes.get(k, 0.0) for k in range(100_000)]
        s.execute(insert(JobMetric), [{"job_id": job.id, "name": "loss", "step": k, "value": v}
                                      for k, v in enumerate(values)])
        few = [float(k) for k in range(50)] + [math.inf]
        s.execute(insert(JobMetric), [{"job_id": job.id, "name": "short", "step": k, "value": v}
                                      for k, v in enumerate(few)])
        series = metric_series(session=s, job_id=job.id, name="loss")
        assert series.downsampled and series.count == 100_000 and len(series.x) <= MAX_POINTS
        assert series.x[0] == 0 and series.x[-1] == 99_999 and series.x == sorted(series.x)
        assert max(series.y) == max(values) and min(series.y) == min(values)  # the spike and the dip survive
        zoomed = metric_series(session=s, job_id=job.id, name="loss", lo=31_000, hi=32_000)
        assert not zoomed.downsampled and zoomed.x == list(range(31_000, 32_001))
        short = metric_series(session=s, job_id=job.id, name="short")
        assert not short.downsampled and short.x == list(range(51)) and short.y[-1] is None  # JSON has no inf


def test_spec_diff_shows_only_differing_fields() -> None:
    from api.spec_diff import spec_diff

    a = {"lr": 0.1, "dino": {"epochs": 100, "out_dim": 65536}, "protocols": ["knn"]}
    b = {"lr": 0.1, "dino": {"epochs": 300, "out_dim": 65536}, "protocols": ["knn", "linear"], "seed": 1}
    assert spec_diff([a, b]) == [("dino.epochs", ["100", "300"]), ("protocols", ['["knn"]', '["knn", "linear"]']),
                                 ("seed", ["", "1"])]
    assert spec_diff([a, a]) == []


def test_surface_comes_from_the_tiles(embedded_settings) -> None:
    from api.ui.surface import surface_of

    with session_scope(embedded_settings.database_url) as s:
        user, _ = create_user(session=s, name="u")
        job = create_job(session=s, job_type="landscape", spec=resolved("landscape", LANDSCAPE), owner=user)
    seed_tiles(embedded_settings, job.id)
    with session_scope(embedded_settings.database_url) as s:
        surface = surface_of(session=s, job=s.get(Job, job.id))
    assert surface["is_2d"] and surface["x"][0] == -1.0 and surface["x"][-1] == pytest.approx(1.0)
    assert len(surface["loss"]) == 11 and all(len(row) == 11 for row in surface["loss"])
    assert surface["origin"]["loss"] == pytest.approx(0.4) == min(min(r) for r in surface["loss"])
    assert (surface["done"], surface["total"], surface["tiles_left"]) == (121, 121, 0)


def test_pages_load_neither_torch_nor_numpy(embedded_settings) -> None:
    """The API image has neither: serving every page, a surface and a series must not import them."""
    import subprocess
    import sys

    code = (
        "import re, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from shared.accounts import create_user\n"
        "from api.main import create_app\n"
        "from shared.db import session_scope\n"
        "from shared.job_lifecycle import create_job\n"
        "from shared.settings import Settings\n"
        f"settings = Settings(home={str(embedded_settings.home)!r}, data_root={str(embedded_settings.data_root)!r})\n"
        "with session_scope(settings.database_url) as s:\n"
        "    user, token = create_user(session=s, name='u')\n"
        "    spec = {'x': [-1, 1, 3], 'y': [-1, 1, 3]}\n"
        "    job = create_job(session=s, job_type='landscape', spec=spec, owner=user).id\n"
        "c = TestClient(create_app(settings))\n"
        "csrf = re.search(r'name=\"csrf\" value=\"([^\"]+)\"', c.get('/login').text).group(1)\n"
        "assert c.post('/login', data={'token': token, 'csrf': csrf}).status_code == 200\n"
        "for path in ('/jobs', f'/jobs/{job}', f'/jobs/{job}/series.json', f'/jobs/{job}/landscape',\n"
        "             f'/jobs/{job}/surface.json', '/queue', f'/compare?jobs={job}', '/datasets', '/docs'):\n"
        "    assert c.get(path).status_code == 200, path\n"
        "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'PIL') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_drain_is_for_admins(ui) -> None:
    from shared.db import Worker

    with session_scope(ui.settings.database_url) as s:
        s.add(Worker(name="gpu0@box", queues="gpu", pid=1, host="box", heartbeat_at=utcnow()))
    csrf = sign_in(ui, "bob")
    assert "Drain" not in ui.get("/queue").text
    assert ui.post("/workers/gpu0@box/drain", data={"csrf": csrf}).status_code == 403
    csrf = sign_in(ui, "alice")
    assert 'action="/workers/gpu0%40box/drain"' in ui.get("/queue").text
    r = ui.post("/workers/gpu0%40box/drain", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "draining" in ui.get("/queue").text
    ui.post("/workers/gpu0@box/undrain", data={"csrf": csrf})
    with session_scope(ui.settings.database_url) as s:
        assert s.get(Worker, "gpu0@box").state == "idle"
    assert ui.post("/workers/nobody/drain", data={"csrf": csrf}).status_code == 404
