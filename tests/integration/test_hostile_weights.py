"""A user names a malicious pickle as the weights of a job: a real worker refuses it and the payload never runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import running_stack
from tests.services.test_weights_loading import write_malicious

pytestmark = pytest.mark.integration


def test_malicious_weights_file_fails_the_job_and_never_runs(tmp_path: Path) -> None:
    from services.data.synthetic import make_synthetic

    data_root = tmp_path / "data"
    make_synthetic(data_root / "synthetic-maritime", n_images=30, image_size=32, seed=0)
    (data_root / "models").mkdir()
    marker = tmp_path / "payload-ran"
    write_malicious(data_root / "models" / "evil.pt", marker)
    spec = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "synthetic-maritime", "image_size": 32},
            "source": {"kind": "file", "path": "models/evil.pt"}, "knn": {"k": [5]}}
    (tmp_path / "home").mkdir()
    with running_stack(tmp_path / "home", data_root) as stack:
        stack.worker()
        job = stack.other.submit("evaluate", spec, name="weights from a stranger")  # ben, not an admin
        done = stack.other.wait(job["id"], timeout=180)
        assert done["status"] == "failed", (done, stack.logs())
        assert done["error"].startswith("WeightsFileError: weights file"), done["error"]
        assert "models/evil.pt" in done["error"] and "would run code" in done["error"]
        assert "\n" not in done["error"] and done["attempts"] == 1
    assert not marker.exists()
