"""GET /api/v1/datasets and `bosun data list`: every layout below the data root, and the FiftyOne
datasets a worker read through FiftyOne and stored in the database."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.catalog import STATS_FILE, list_datasets


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def nas(tmp_path: Path, data_root: Path) -> Path:
    """A data root with one dataset of every kind, the session's synthetic set linked in."""
    root = tmp_path / "nas"
    root.mkdir()
    (root / "synthetic-maritime").symlink_to(data_root / "synthetic-maritime")
    batches = root / "cifar" / "c10" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with (batches / "batches.meta").open("wb") as fh:
        pickle.dump({"label_names": names}, fh)
    for name, labels in [(f"data_batch_{i}", [i, i, 0]) for i in range(1, 6)] + [("test_batch", [9, 9])]:
        with (batches / name).open("wb") as fh:
            pickle.dump({"data": np.zeros((len(labels), 3072), np.uint8), "labels": labels}, fh)
    c10c = root / "c10c"
    c10c.mkdir()
    np.save(c10c / "labels.npy", np.array([0, 1, 1, 2, 3], dtype=np.int64))
    for corruption in ("fog", "snow"):
        np.save(c10c / f"{corruption}.npy", np.zeros((5, 4, 4, 3), np.uint8))
    for split, count in (("train", 3), ("test", 1)):
        for cls in ("gull", "tern"):
            for i in range(count):
                write_png(root / "photos" / split / cls / f"{i}.jpg", np.zeros((4, 4, 3), np.uint8))
                write_png(root / "ir" / split / cls / f"{i}.png", np.full((4, 4), 30000, np.uint16))
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a dataset")
    (root / ".cache" / "x" / "train" / "a").mkdir(parents=True)
    write_png(root / ".cache" / "x" / "train" / "a" / "0.png", np.zeros((4, 4, 3), np.uint8))
    return root


def test_every_layout_is_recognized(nas: Path, data_root: Path) -> None:
    catalog = list_datasets(nas, max_age=0)
    found = {info.name: info for info in catalog.data}
    assert sorted(found) == ["c10c", "cifar/c10", "ir", "photos", "synthetic-maritime"]
    assert found["cifar/c10"].kind == "cifar10"
    assert found["cifar/c10"].splits == {"train": 15, "test": 2}
    assert found["cifar/c10"].classes["airplane"] == 5 and found["cifar/c10"].classes["truck"] == 2
    assert found["c10c"].splits == {"test": 10}
    assert found["c10c"].classes["automobile"] == 4 and found["c10c"].details["corruptions"] == ["snow", "fog"]
    assert (found["photos"].kind, found["ir"].kind) == ("folder", "thermal")
    assert found["ir"].splits == {"test": 2, "train": 6} and found["ir"].classes == {"gull": 4, "tern": 4}
    meta = json.loads((data_root / "synthetic-maritime" / "annotations.json").read_text())
    synthetic = found["synthetic-maritime"]
    assert synthetic.kind == "synthetic-maritime"
    assert sum(synthetic.splits.values()) == sum(len(r["labels"]) for r in meta["images"])
    assert catalog.errors == []


def test_scan_is_cached_briefly(nas: Path) -> None:
    first = list_datasets(nas, max_age=0)
    (nas / "photos2" / "train" / "a").mkdir(parents=True)
    write_png(nas / "photos2" / "train" / "a" / "0.png", np.zeros((4, 4, 3), np.uint8))
    assert list_datasets(nas, max_age=30).count == first.count
    assert list_datasets(nas, max_age=0).count == first.count + 1


def test_route_needs_a_token_and_lists(api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    assert api.get("/api/v1/datasets").status_code == 401
    response = api.get("/api/v1/datasets", headers=api.as_("bob"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [d["name"] for d in body["data"]] == ["synthetic-maritime"]
    assert body["data"][0]["classes"]["ship"] > 0


def test_research_side_detects_the_kinds_the_catalog_lists(nas: Path) -> None:
    """`bosun data stats NAME` (services.data.layout) and the catalog agree on every layout."""
    from services.data.layout import detect_kind
    from services.data.stats import STATS_FILE as WRITTEN

    for info in list_datasets(nas, max_age=0).data:
        assert detect_kind(nas / info.name) == info.kind, info.name
    assert detect_kind(nas / "notes") is None and detect_kind(nas / "missing") is None
    assert WRITTEN == STATS_FILE


def fiftyone_env(tmp_path: Path) -> dict[str, str]:
    """FiftyOne on the test mongod, in a database of this test's own; skips without a mongod."""
    from tests.mongo import mongo_uri

    try:
        uri = mongo_uri()
    except RuntimeError as exc:
        pytest.skip(f"needs a mongod: {exc}")
    return {"FIFTYONE_DATABASE_URI": uri, "FIFTYONE_DATABASE_NAME": f"catalog-{uuid.uuid4().hex[:8]}"}


def listed(api) -> dict[str, dict]:
    response = api.get("/api/v1/datasets", headers=api.as_("bob"))
    assert response.status_code == 200, response.text
    return {d["name"]: d for d in response.json()["data"]}


def test_worker_refresh_stores_what_the_api_lists(api, embedded_settings, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.catalog_refresh import refresh
    from worker.monitor import Monitor

    fo_env = fiftyone_env(tmp_path)
    env = {**os.environ, **fo_env}
    made = subprocess.run([sys.executable, "-m", "services.data", "make-synthetic", str(tmp_path / "syn"),
                           "--n-images", "12", "--image-size", "32", "--fiftyone", "seaset"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    assert "seaset" not in listed(api)
    for name, value in fo_env.items():
        monkeypatch.setenv(name, value)

    monitor = Monitor(embedded_settings, "w1@test", "cpu", "")  # its refresh thread reads FiftyOne at start
    monitor.start()
    try:
        deadline = time.monotonic() + 120
        while "seaset-thermal" not in listed(api) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        monitor.stop()
    found = listed(api)
    assert sorted(found) == ["seaset", "seaset-thermal", "synthetic-maritime"]
    meta = json.loads((tmp_path / "syn" / "annotations.json").read_text())
    rgb = found["seaset"]
    assert (rgb["kind"], rgb["source"], rgb["details"]["label_field"]) == ("fiftyone", "fiftyone", "ground_truth")
    assert rgb["details"]["refreshed_by"] == "w1@test" and rgb["details"]["samples"] == 12
    assert sum(rgb["splits"].values()) == 12
    assert rgb["classes"] == Counter(label for record in meta["images"] for label in record["labels"])

    assert refresh(embedded_settings, worker="w2@test") is None  # younger than 5 min: another worker leaves it

    # A dataset deleted in FiftyOne is gone after the next refresh, here the forced one of the CLI.
    gone = subprocess.run([sys.executable, "-c", "import fiftyone as fo; fo.delete_dataset('seaset-thermal')"],
                          capture_output=True, text=True, env={**env, "FIFTYONE_DATABASE_VALIDATION": "false"},
                          timeout=120)
    assert gone.returncode == 0, gone.stderr
    assert "seaset-thermal" in listed(api)
    cli_env = {**env, "BOSUN_HOME": str(embedded_settings.home), "BOSUN_DATABASE_URL": embedded_settings.database_url}
    forced = subprocess.run([sys.executable, "-m", "worker", "--refresh-catalog", "--name", "cli@test"],
                            capture_output=True, text=True, env=cli_env, timeout=300)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("stored 1 FiftyOne datasets"), forced.stdout
    found = listed(api)
    assert "seaset-thermal" not in found and found["seaset"]["details"]["refreshed_by"] == "cli@test"


def test_api_reads_stored_fiftyone_datasets_without_fiftyone_pymongo_or_torch(embedded_settings) -> None:
    from shared.catalog import DatasetInfo, replace_stored
    from shared.db import session_scope

    with session_scope(embedded_settings.database_url) as s:
        replace_stored(session=s, source="fiftyone", refreshed_by="w1@test", errors={"broken": "KeyError: 'x'"},
                       data=[DatasetInfo(name="seaset", kind="fiftyone", source="fiftyone", splits={"train": 2},
                                         classes={"ship": 3}, details={"samples": 2})])
    code = (
        "import json, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from shared.accounts import create_user\n"
        "from api.main import create_app\n"
        "from shared.db import session_scope\n"
        "from shared.settings import Settings\n"
        f"settings = Settings(home={str(embedded_settings.home)!r}, data_root={str(embedded_settings.data_root)!r})\n"
        "with session_scope(settings.database_url) as s:\n"
        "    _, token = create_user(session=s, name='cy')\n"
        "client = TestClient(create_app(settings))\n"
        "body = client.get('/api/v1/datasets', headers={'Authorization': 'Bearer ' + token})\n"
        "heavy = sorted(m for m in ('torch', 'fiftyone', 'pymongo', 'numpy', 'timm') if m in sys.modules)\n"
        "print(json.dumps({'body': body.json(), 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if not k.startswith("FIFTYONE_")})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    body = result["body"]
    assert [(d["name"], d["source"]) for d in body["data"]] == [("synthetic-maritime", "data_root"),
                                                               ("seaset", "fiftyone")]
    assert body["data"][1]["classes"] == {"ship": 3} and body["count"] == 2
    assert body["errors"] == ["fiftyone broken: KeyError: 'x'"]
