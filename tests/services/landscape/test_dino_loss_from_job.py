"""Metric 'dino_loss' of a pretraining job's exported checkpoint.pt (source kind 'job'): what the
artifact holds, the landscape's value at the trained point, and the older artifacts it cannot score."""

from __future__ import annotations

import pytest
import torch
from ssl_checkpoints import EXPORTED_CHECKPOINT, TRAINING_CHECKPOINT, landscape_raw

from services.backbones import load_backbone
from services.job_context import LocalContext, load_torch
from services.landscape import landscape_job
from services.landscape.network import load_dino
from services.pretrain.export import DINO_KEY, dino_method_state
from services.pretrain.methods import build_method
from shared.specs.common import BackboneSpec, ModelSource
from shared.specs.landscape import LandscapeSpec
from tests.services.figure_checks import svg_text

torch.set_num_threads(1)


def job_spec(**changes) -> LandscapeSpec:
    """The tiny landscape with the pretraining job (job 1) as source and no dino options of its own."""
    return LandscapeSpec.model_validate(landscape_raw(**{"source": {"kind": "job", "job": 1}, "dino": None,
                                                         **changes}))


def sibling(pretrain_ctx: LocalContext, data_root, job_id: int) -> LocalContext:
    """A job context beside the pretraining job's, so it fetches that job's artifacts."""
    return LocalContext(pretrain_ctx.root.parent / f"job{job_id}", job_id=job_id, data_root=data_root)


def test_the_exported_checkpoint_holds_the_dino_loss(dino_pretraining, data_root) -> None:
    pretrain_ctx, pretrain_spec = dino_pretraining
    exported = load_torch(pretrain_ctx.artifact_path("checkpoint.pt"))
    trainer = load_torch(data_root / TRAINING_CHECKPOINT)
    entry = exported[DINO_KEY]
    assert exported["epoch"] == exported["epochs"] == trainer["epoch"] == 1
    assert entry["options"] == pretrain_spec.dino.model_dump(mode="json")
    assert entry["teacher_temp"] == 0.06 and entry["student_temp"] == 0.1
    rebuilt = dino_method_state(exported)
    assert sorted(rebuilt) == sorted(trainer["method"])  # heads, backbones and centre: the whole method
    for name, value in trainer["method"].items():
        assert torch.equal(rebuilt[name], value), name


def test_a_landscape_of_the_job_scores_its_dino_loss(dino_pretraining, data_root) -> None:
    pretrain_ctx, pretrain_spec = dino_pretraining
    spec = job_spec(mode="1d", x=[-0.5, 0.5, 3], y=None)
    ctx = sibling(pretrain_ctx, data_root, 21)
    result = landscape_job.run(spec, ctx)
    assert result["metric"] == "dino_loss" and result["source"] == "job" and result["shape"] == [3]
    assert any("DINO loss of epoch 1: student moved, teacher fixed, teacher temperature 0.06" in line
               for line in ctx.logs)
    curve = " ".join(svg_text(ctx.artifact_path("loss_curve.svg").read_bytes()).split())
    for words in ("DINO loss (student vs. fixed teacher)", "landscape job 21", "job 1 checkpoint.pt", "epoch 1"):
        assert words in curve, words

    # independently: the pretraining method loaded from the trainer's own checkpoint, on the same crops
    crops = list(landscape_job.load_evaluator(spec, sibling(pretrain_ctx, data_root, 21)).data[:-1])
    method = build_method(pretrain_spec, num_classes=6, img_size=32)
    trainer = load_torch(data_root / TRAINING_CHECKPOINT)
    method.load_state_dict(trainer["method"])
    method.eval()
    with torch.no_grad():
        expected = method.dino_loss(method.student(crops), method.teacher(crops[:2]), trainer["epoch"] - 1)
    assert result["origin"]["a"] == 0.0 and result["origin"]["loss"] == pytest.approx(expected.item(), rel=1e-5)
    assert result["min_loss"] == result["origin"]["loss"] < result["max_loss"]

    # the trainer's checkpoint file with the run's dino options draws the same surface
    from_file = landscape_job.run(LandscapeSpec.model_validate(landscape_raw(mode="1d", x=[-0.5, 0.5, 3], y=None)),
                                  sibling(pretrain_ctx, data_root, 22))
    assert from_file["origin"]["loss"] == pytest.approx(result["origin"]["loss"], rel=1e-6)


def test_dino_options_other_than_the_jobs_are_refused(dino_pretraining, data_root) -> None:
    pretrain_ctx, _ = dino_pretraining
    same = job_spec(dino=landscape_raw()["dino"])  # the pretrain spec's own block is no conflict
    assert load_dino(same, same.source, sibling(pretrain_ctx, data_root, 23)).ncrops == 4
    other = {**landscape_raw()["dino"], "out_dim": 64, "local_crops_number": 4}
    with pytest.raises(ValueError, match="the spec's differ in local_crops_number, out_dim: leave dino out"):
        landscape_job.run(job_spec(dino=other), sibling(pretrain_ctx, data_root, 23))


def test_an_older_exported_checkpoint_loads_as_backbones_and_is_refused_for_dino_loss(
        dino_pretraining, tmp_path, data_root) -> None:
    older = {k: v for k, v in load_torch(data_root / EXPORTED_CHECKPOINT).items()
             if k not in (DINO_KEY, "epoch")}  # what a job exported before the heads were kept
    torch.save(older, data_root / "exported-older.pt")
    ctx = LocalContext(tmp_path / "job1", data_root=data_root)
    source = ModelSource(kind="file", path="exported-older.pt")
    backbone = load_backbone(BackboneSpec(name="vit_tiny_patch16_224", kwargs={"patch_size": 8}), source, ctx)
    for name, value in backbone.state_dict().items():
        assert torch.equal(value, older["teacher"][name]), name
    with pytest.raises(ValueError, match="holds the backbones only: no DINO head, no centre"):
        landscape_job.run(LandscapeSpec.model_validate(landscape_raw(source=source.model_dump(), dino=None)), ctx)
