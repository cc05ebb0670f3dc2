"""GET /api/v1/datasets: every layout below the data root, and FiftyOne via pymongo."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.datasets import list_datasets


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


def test_route_needs_a_token_and_lists(api, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    assert api.get("/api/v1/datasets").status_code == 401
    response = api.get("/api/v1/datasets", headers=api.as_("bob"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [d["name"] for d in body["data"]] == ["synthetic-maritime"]
    assert body["data"][0]["classes"]["ship"] > 0


def test_fiftyone_datasets_listed_without_fiftyone_or_torch(tmp_path: Path) -> None:
    from tests.mongo import mongo_uri

    try:
        uri = mongo_uri()
    except RuntimeError as exc:
        pytest.skip(f"needs a mongod: {exc}")
    env = {**os.environ, "FIFTYONE_DATABASE_URI": uri, "FIFTYONE_DATABASE_NAME": "catalog"}
    made = subprocess.run([sys.executable, "-m", "services.data", "make-synthetic", str(tmp_path / "syn"),
                           "--n-images", "12", "--image-size", "32", "--fiftyone", "seaset"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from shared.datasets import list_datasets, fiftyone_from_env\n"
        "uri, name = fiftyone_from_env()\n"
        f"catalog = list_datasets(Path({str(tmp_path / 'empty')!r}), fiftyone_uri=uri, fiftyone_database=name)\n"
        "heavy = sorted(m for m in ('torch', 'fiftyone', 'numpy', 'timm') if m in sys.modules)\n"
        "print(json.dumps({'catalog': catalog.model_dump(), 'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    listed = {d["name"]: d for d in result["catalog"]["data"]}
    assert sorted(listed) == ["seaset", "seaset-thermal"]
    meta = json.loads((tmp_path / "syn" / "annotations.json").read_text())
    rgb = listed["seaset"]
    assert rgb["kind"] == "fiftyone" and rgb["details"]["label_field"] == "ground_truth"
    assert sum(rgb["splits"].values()) == 12
    assert sum(rgb["classes"].values()) == sum(len(r["labels"]) for r in meta["images"])
