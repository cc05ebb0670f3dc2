"""Plugins on the real stack (Postgres, Redis, S3, a worker): a `bosun.losses` term and a
`bosun.datasets` kind used by DINO pretrainings, and crop policies and methods checked at submit.

The worker runs with the example plugins (tests/plugins/focal, squares, fivecrop and rotnet) on its
PYTHONPATH, as packages installed in its environment would be; the API, which has not got them,
checks submissions against what the workers advertise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.client import ApiError
from tests.integration.conftest import Stack, running_stack
from tests.stack import ROOT, start_worker, tiny_dino_spec, wait_for

pytestmark = pytest.mark.integration

PLUGINS = [ROOT / "tests" / "plugins" / name for name in ("focal", "squares", "fivecrop", "rotnet")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("plugins"), data_root) as running:
        env = {**running.env, "PYTHONPATH": ":".join(map(str, [ROOT, *PLUGINS]))}
        running.workers.append(start_worker(env, running.home / "worker-plugins.log", name="focal@plugins"))
        offered = {"losses": ["focal"], "methods": ["rotnet"], "transforms": ["fivecrop"], "datasets": ["squares"]}
        wait_for(lambda: any(w["alive"] and w["plugins"] == offered for w in running.client.workers()),
                 120, "the worker to advertise its plugins")
        yield running


def focal_spec(name: str = "focal") -> dict:
    spec = tiny_dino_spec(epochs=1, knn_every=0)
    spec["dino"]["extra_losses"] = [{"name": name, "weight": 0.5, "params": {"gamma": 2.0}}]
    spec["log_every"] = 1
    return spec


def test_a_dino_spec_naming_the_plugin_loss_trains_with_its_term(stack: Stack) -> None:
    job = stack.client.submit("pretrain", focal_spec(), name="dino + focal plugin", gpus=0)
    done = stack.client.wait(job["id"], timeout=600)
    assert done["status"] == "succeeded", (done, stack.logs())
    focal = stack.client.metrics(job["id"], "loss_focal")
    assert focal and all(point["value"] > 0 for point in focal)
    loss = {point["step"]: point["value"] for point in stack.client.metrics(job["id"], "loss")}
    # the logged loss is DINO's plus half the focal term, so it exceeds the term's share
    assert all(loss[point["step"]] > 0.5 * point["value"] for point in focal)


def test_a_spec_naming_an_unknown_plugin_is_refused_naming_the_field(stack: Stack) -> None:
    with pytest.raises(ApiError) as refused:
        stack.client.submit("pretrain", focal_spec("no-such-loss"), gpus=0)
    assert refused.value.status == 422
    (error,) = refused.value.detail
    assert error["loc"] == ["body", "spec", "dino", "extra_losses", 0, "name"]
    assert "no alive worker has the bosun.losses plugin 'no-such-loss'; the workers offer: focal" in error["msg"]
    spec = focal_spec()
    spec["dino"]["crop_policy"] = {"name": "tencrop"}
    with pytest.raises(ApiError) as refused:
        stack.client.validate("pretrain", spec, gpus=0)
    (error,) = refused.value.detail
    assert error["loc"] == ["body", "spec", "dino", "crop_policy", "name"]
    assert "no alive worker has the bosun.transforms plugin 'tencrop'; the workers offer: fivecrop" in error["msg"]
    spec["dino"]["crop_policy"] = {"name": "fivecrop"}
    assert stack.client.validate("pretrain", spec, gpus=0)["spec"]["dino"]["crop_policy"]["name"] == "fivecrop"
    method = {**focal_spec(), "method": "plugin", "plugin": {"name": "simsiam"}}
    del method["dino"]
    with pytest.raises(ApiError) as refused:
        stack.client.validate("pretrain", method, gpus=0)
    (error,) = refused.value.detail
    assert error["loc"] == ["body", "spec", "plugin", "name"]
    assert "no alive worker has the bosun.methods plugin 'simsiam'; the workers offer: rotnet" in error["msg"]


def test_a_dino_spec_on_a_plugin_dataset_kind_trains_on_its_images(stack: Stack) -> None:
    spec = tiny_dino_spec(epochs=1, knn_every=1)
    spec["dataset"] = {"kind": "plugin", "name": "squares", "image_size": 32, "params": {"per_class": 12}}
    job = stack.client.submit("pretrain", spec, name="dino on squares", gpus=0)
    done = stack.client.wait(job["id"], timeout=600)
    assert done["status"] == "succeeded", (done, stack.logs())
    assert done["result"]["train_samples"] == 36 and done["result"]["knn_top1"] is not None
    unknown = {**spec, "dataset": {**spec["dataset"], "name": "coco"}}
    with pytest.raises(ApiError) as refused:
        stack.client.submit("pretrain", unknown, gpus=0)
    (error,) = refused.value.detail
    assert error["loc"] == ["body", "spec", "dataset", "name"]
    assert "no alive worker has the bosun.datasets plugin 'coco'; the workers offer: squares" in error["msg"]
