"""Where FiftyOne is not installed: every other dataset kind, a job and the catalog work; what needs
FiftyOne fails with one line naming the extra.

Each check runs in a fresh interpreter whose `sitecustomize` sets `sys.modules["fiftyone"] = None`,
so `import fiftyone` fails there (and in its children) as if the package were absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXTRA = "install bosun[fiftyone]"

JOB = """
import json, sys
from pathlib import Path
import torch
from services.job_context import LocalContext
from services.data.builders import build_dataset
from services.data.images import DatasetError
from services.evaluate.evaluation import run
from shared.catalog import DatasetInfo, list_datasets, replace_stored
from shared.db import session_scope
from shared.db.migrate import upgrade
from shared.settings import Settings
from shared.specs.dataset import FiftyOneDataset, FolderDataset
from shared.specs.evaluate import EvaluateSpec
from worker.catalog_refresh import RefreshError, refresh
from worker.processes import one_line

torch.set_num_threads(1)
data_root, work, url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
out = {"blocked": sys.modules.get("fiftyone", "absent") is None}
folder = build_dataset(FolderDataset(kind="folder", path="photos"), "train", data_root=data_root)
out["folder"] = [len(folder), folder.classes]
spec = EvaluateSpec.model_validate({
    "backbone": {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}},
    "dataset": {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 24},
    "protocols": ["knn"], "knn": {"k": [5]}, "batch_size": 32})
result = run(spec, LocalContext(work / "job1", data_root=data_root))
out["knn"] = result["knn"]["per_k"]["5"]["top1"]
try:
    build_dataset(FiftyOneDataset(kind="fiftyone", dataset_name="seaset"), "train", data_root=data_root)
except DatasetError as exc:
    out["fiftyone_job"] = one_line(exc)
upgrade(url)
with session_scope(url) as s:
    replace_stored(session=s, source="fiftyone", errors={}, refreshed_by="w@gpu", data=[
        DatasetInfo(name="seaset", kind="fiftyone", source="fiftyone", splits={"train": 4}, classes={"ship": 4})])
with session_scope(url) as s:
    out["catalog"] = [(d.name, d.kind) for d in list_datasets(data_root, session=s, max_age=0).data]
try:
    refresh(Settings(home=work / "home", database_url=url), worker="w@cpu")
except RefreshError as exc:
    out["refresh"] = str(exc)
out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] == "fiftyone" and sys.modules[m] is not None)
print(json.dumps(out))
"""


@pytest.fixture
def no_fiftyone(tmp_path: Path) -> dict[str, str]:
    """The environment of an interpreter without FiftyOne (FIFTYONE_DATABASE_URI set, as in compose)."""
    stub = tmp_path / "no-fiftyone"
    stub.mkdir()
    (stub / "sitecustomize.py").write_text('import sys\nsys.modules["fiftyone"] = None\n')
    path = os.pathsep.join(filter(None, [str(stub), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "FIFTYONE_DATABASE_URI": "mongodb://127.0.0.1:9/", "OMP_NUM_THREADS": "1"}


def photos(data_root: Path, tmp_path: Path) -> Path:
    """A data root with the session's synthetic set and a small folder dataset `photos`."""
    from tests.services.data.helpers import solid_rgb, write_png

    root = tmp_path / "nas"
    root.mkdir()
    shutil.copytree(data_root / "synthetic-maritime", root / "synthetic-maritime")  # a link would leave the root
    for i, cls in enumerate(("gull", "tern")):
        write_png(root / "photos" / "train" / cls / "0.png", solid_rgb((40 * i, 90, 200)))
    return root


def test_jobs_and_catalog_work_and_fiftyone_names_the_extra(no_fiftyone: dict[str, str], data_root: Path,
                                                            tmp_path: Path) -> None:
    root = photos(data_root, tmp_path)
    url = f"sqlite:///{tmp_path / 'bosun.db'}"
    done = subprocess.run([sys.executable, "-c", JOB, str(root), str(tmp_path), url], capture_output=True, text=True,
                          env=no_fiftyone, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["blocked"] and out["loaded"] == []
    assert out["folder"] == [2, ["gull", "tern"]]
    assert 0.0 <= out["knn"] <= 100.0
    assert out["fiftyone_job"].startswith("DatasetError: FiftyOne is not installed") and EXTRA in out["fiftyone_job"]
    assert out["catalog"] == [["photos", "folder"], ["synthetic-maritime", "synthetic-maritime"],
                              ["seaset", "fiftyone"]]
    assert EXTRA in out["refresh"]


@pytest.mark.parametrize("command", [
    ["-m", "services.data", "catalog"],
    ["-m", "services.data", "stats", "seaset", "--fiftyone", "--data-root", "{root}"],
    ["-m", "worker", "--refresh-catalog"],
])
def test_commands_that_need_fiftyone_fail_with_one_line(no_fiftyone: dict[str, str], tmp_path: Path,
                                                        command: list[str]) -> None:
    env = {**no_fiftyone, "BOSUN_HOME": str(tmp_path / "home")}
    args = [part.replace("{root}", str(tmp_path)) for part in command]
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: FiftyOne is not installed") and EXTRA in lines[0], lines
    assert done.stdout == ""
