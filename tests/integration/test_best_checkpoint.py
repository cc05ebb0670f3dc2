"""The best checkpoint by name on the real stack: a pretraining keeping its best checkpoint by the
learning rate (highest around the end of the warm-up, so the best is not the last)
exports `best.pt` beside `checkpoint.pt`; it downloads like any artifact, and an evaluation whose
source says `checkpoint: best` loads it, naming its epoch, while the default still loads the last."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.client import ApiError
from tests.stack import bosun, tiny_dino_spec

pytestmark = pytest.mark.integration

EPOCHS = 3
TINY_VIT = {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}}


def evaluate_spec(source: dict) -> dict:
    return {"backbone": TINY_VIT, "source": source, "protocols": ["knn"], "knn": {"k": [5]},
            "dataset": {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 24}}


def refusal(client, spec: dict) -> tuple[int, list, str]:
    with pytest.raises(ApiError) as caught:
        client.submit("evaluate", spec)
    detail = caught.value.detail[0]
    return caught.value.status, detail["loc"], detail["msg"]


def test_best_checkpoint_downloads_and_feeds_an_evaluation(stack, tmp_path: Path) -> None:
    ben = stack.other
    spec = {**tiny_dino_spec(epochs=EPOCHS, knn_every=0), "checkpoint_keep_last": 1, "checkpoint_keep_best": "lr:max"}
    spec["dataset"] = {**spec["dataset"], "max_per_split": 48}
    pretrain = ben.submit("pretrain", spec, name="keeps its best")
    plain = ben.submit("pretrain", tiny_dino_spec(epochs=1, knn_every=0), name="keeps no best")
    ben.cancel(plain["id"])

    best_source = {"kind": "job", "job": pretrain["id"], "checkpoint": "best"}
    best = ben.submit("evaluate", evaluate_spec(best_source), name="from the best")
    last = ben.submit("evaluate", evaluate_spec({"kind": "job", "job": pretrain["id"]}), name="from the last")
    assert best["depends_on"] == [pretrain["id"]] and best["spec"]["source"]["artifact"] == "best.pt"
    assert last["spec"]["source"]["checkpoint"] == "last"

    where = ["body", "spec", "source", "checkpoint"]
    status, loc, msg = refusal(ben, evaluate_spec({"kind": "job", "job": plain["id"], "checkpoint": "best"}))
    assert (status, loc) == (422, where) and f"job {plain['id']} keeps no best checkpoint" in msg
    status, loc, msg = refusal(ben, evaluate_spec({"kind": "job", "job": best["id"], "checkpoint": "best"}))
    assert (status, loc) == (422, where) and "only a pretraining keeps a best checkpoint" in msg
    status, loc, _ = refusal(ben, evaluate_spec({**best_source, "checkpoint": "worst"}))
    assert (status, loc) == (422, where)
    status, loc, msg = refusal(ben, evaluate_spec({**best_source, "artifact": "other.pt"}))
    assert (status, loc) == (422, where) and "leave artifact out" in msg

    stack.worker()
    done = {job["id"]: ben.wait(job["id"], timeout=600) for job in (pretrain, best, last)}
    assert all(j["status"] == "succeeded" for j in done.values()), (done, stack.logs())
    # each epoch's checkpoint is judged by the last lr logged before it (by iteration); the earlier wins a tie
    result = done[pretrain["id"]]["result"]
    niter = result["iterations"] // EPOCHS
    lr = {m["step"]: m["value"] for m in ben.metrics(pretrain["id"], "lr")}
    at_checkpoint = [lr[max(step for step in lr if step <= epoch * niter)] for epoch in range(1, EPOCHS + 1)]
    expected = 1 + at_checkpoint.index(max(at_checkpoint))
    marked = result["best_checkpoint"]
    assert (marked["step"], marked["metric"], marked["mode"], marked["value"]) == (expected, "lr", "max",
                                                                                 max(at_checkpoint))
    assert expected != EPOCHS, at_checkpoint  # after the warm-up the cosine schedule only falls

    from_best, from_last = done[best["id"]]["result"], done[last["id"]]["result"]
    assert (from_best["weights_from"], from_best["weights_epoch"]) == (f"job {pretrain['id']} best.pt", expected)
    assert (from_last["weights_from"], from_last["weights_epoch"]) == (f"job {pretrain['id']} checkpoint.pt", EPOCHS)
    assert any(line["text"] == f"loaded teacher weights from job {pretrain['id']} artifact best.pt"
               for line in ben.logs(best["id"]))

    import torch

    token = ben.http.headers["Authorization"].removeprefix("Bearer ")
    printed = bosun({**stack.env, "BOSUN_API_URL": stack.url, "BOSUN_TOKEN": token},
                    "download", str(pretrain["id"]), "best.pt", "-o", str(tmp_path / "best.pt"))
    assert "saved" in printed
    ben.download(pretrain["id"], "checkpoint.pt", tmp_path / "last.pt")
    exported = {name: torch.load(tmp_path / name, map_location="cpu", weights_only=True)
                for name in ("best.pt", "last.pt")}
    assert (exported["best.pt"]["epoch"], exported["last.pt"]["epoch"]) == (expected, EPOCHS)
    assert exported["best.pt"]["teacher"].keys() == exported["last.pt"]["teacher"].keys()
    assert any(not torch.equal(exported["best.pt"]["teacher"][k], exported["last.pt"]["teacher"][k])
               for k in exported["best.pt"]["teacher"])
    assert any(line["text"].startswith(f"best checkpoint (step {expected}, lr ") for line in ben.logs(pretrain["id"]))
