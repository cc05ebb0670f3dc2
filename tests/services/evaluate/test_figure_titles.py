"""An evaluate job's figure titles name the job, the weights and the epoch they were trained for:
a pretraining job's checkpoint.pt says its epoch, so its evaluation's figures do too."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from services.backbones import read_source
from services.evaluate.evaluation import run as run_evaluation
from services.job_context import LocalContext, load_torch
from services.pretrain.pretrain_job import run as run_pretraining
from shared.specs.common import ModelSource
from shared.specs.evaluate import EvaluateSpec
from shared.specs.pretrain import PretrainSpec
from tests.services.figure_checks import svg_text
from tests.services.weights_files import tiny_vit, write_dino_checkpoint

BACKBONE = {"name": "vit_tiny_patch16_224", "kwargs": {"patch_size": 8}}
DATASET = {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 16}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """A 2-epoch tiny DINO pretraining job (job 1); returns the folder its context and its followers' live in."""
    torch.set_num_threads(1)
    jobs = tmp_path_factory.mktemp("jobs")
    spec = PretrainSpec.model_validate({
        "method": "dino", "backbone": BACKBONE, "dataset": DATASET, "amp": "none", "knn_every": 0,
        "dino": {"epochs": 2, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0, "out_dim": 32,
                 "head_hidden_dim": 32, "head_bottleneck_dim": 16, "local_crops_number": 0}})
    run_pretraining(spec, LocalContext(jobs / "job1", data_root=data_root))
    return jobs


def title_text(ctx: LocalContext, svg: str) -> str:
    return " ".join(svg_text(ctx.artifact_path(svg).read_bytes()).split())


def evaluate(root: Path, data_root: Path, job_id: int, source: dict) -> LocalContext:
    torch.set_num_threads(1)
    ctx = LocalContext(root / f"job{job_id}", job_id=job_id, data_root=data_root)
    spec = EvaluateSpec.model_validate({"backbone": BACKBONE, "dataset": DATASET, "protocols": ["knn"],
                                        "knn": {"k": [5]}, "source": source})
    run_evaluation(spec, ctx)
    return ctx


def test_figures_of_a_pretraining_jobs_checkpoint_name_its_epoch(pretrained: Path, data_root: Path) -> None:
    assert load_torch(pretrained / "job1" / "artifacts" / "checkpoint.pt")["epoch"] == 2
    ctx = evaluate(pretrained, data_root, 2, {"kind": "job", "job": 1})
    assert "kNN (k=5) confusion matrix evaluate job 2 · job 1 checkpoint.pt · epoch 2" in title_text(
        ctx, "knn_confusion.svg")


def test_weights_without_an_epoch_get_no_epoch_in_the_title(pretrained: Path, data_root: Path) -> None:
    exported = load_torch(pretrained / "job1" / "artifacts" / "checkpoint.pt")
    torch.save({"teacher": exported["teacher"], "backbone": exported["backbone"]}, data_root / "teacher-only.pt")
    ctx = evaluate(pretrained, data_root, 3, {"kind": "file", "path": "teacher-only.pt"})
    title = title_text(ctx, "knn_confusion.svg")
    assert "evaluate job 3 · teacher-only.pt" in title and "epoch" not in title


def test_the_epoch_of_each_kind_of_checkpoint(pretrained: Path, data_root: Path, tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "job9", job_id=9, data_root=data_root)
    write_dino_checkpoint(data_root / "epochs" / "dino_full.pth", tiny_vit(1), tiny_vit(2))  # the reference's: 100
    exported = load_torch(pretrained / "job1" / "artifacts" / "checkpoint.pt")
    torch.save({k: v for k, v in exported.items() if k != "epoch"}, data_root / "epochs" / "older-export.pt")
    torch.save({"teacher": exported["teacher"], "epochs": 7}, data_root / "epochs" / "not-ours.pt")

    def epoch(path: str) -> int | None:
        return read_source(ModelSource(kind="file", path=f"epochs/{path}"), ctx, BACKBONE["name"]).epoch

    assert epoch("dino_full.pth") == 100
    assert epoch("older-export.pt") == 2  # a checkpoint.pt from before `epoch`: its `epochs`
    assert epoch("not-ours.pt") is None
    assert read_source(ModelSource(kind="job", job=1), LocalContext(pretrained / "job4", job_id=4,
                                                                    data_root=data_root), BACKBONE["name"]).epoch == 2
