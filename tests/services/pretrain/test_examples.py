"""The job files in deploy/examples: valid specs, the research notes' recipes kept value for value,
smoke variants that keep each recipe's character, and follow-up jobs wired to a pretrain job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.job_types import parse_spec
from shared.specs.pretrain import (
    REFERENCE_LAUNCHER_ARGS,
    PretrainSpec,
    backbone_for_reference_arch,
    dino_spec_from_reference,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "deploy" / "examples"
JOB_FILE_KEYS = {"type", "spec", "name", "priority", "depends_on", "gpus"}
"""What `bosun submit` reads from a job file."""

# The two DINO configurations of the research notes (14.11.2022), as recorded there.
NOTES_VIT_S = {
    "arch": "vit_small", "patch_size": 16, "out_dim": 65536, "norm_last_layer": False,
    "warmup_teacher_temp": 0.04, "teacher_temp": 0.07, "warmup_teacher_temp_epochs": 30, "use_fp16": False,
    "weight_decay": 0.04, "weight_decay_end": 0.4, "clip_grad": 0, "batch_size_per_gpu": 64, "epochs": 800,
    "freeze_last_layer": 1, "lr": 0.0005, "warmup_epochs": 10, "min_lr": 1e-05, "global_crops_scale": [0.25, 1.0],
    "local_crops_scale": [0.05, 0.25], "local_crops_number": 10, "seed": 0, "num_workers": 10, "world_size": 16,
    "ngpus": 8, "nodes": 2, "optimizer": "adamw", "momentum_teacher": 0.996, "use_bn_in_head": False,
    "drop_path_rate": 0.1,
}
NOTES_RESNET = {
    "arch": "resnet50", "out_dim": 60000, "norm_last_layer": True, "warmup_teacher_temp": 0.04, "teacher_temp": 0.07,
    "warmup_teacher_temp_epochs": 50, "use_fp16": False, "weight_decay": 0.000001, "weight_decay_end": 0.000001,
    "clip_grad": 0, "batch_size_per_gpu": 51, "epochs": 800, "freeze_last_layer": 1, "lr": 0.3, "warmup_epochs": 10,
    "min_lr": 0.0048, "global_crops_scale": [0.14, 1.0], "local_crops_scale": [0.05, 0.14], "local_crops_number": 6,
    "seed": 0, "num_workers": 10, "world_size": 80, "optimizer": "lars", "momentum_teacher": 0.996,
    "use_bn_in_head": True,
}
RECIPES = {"dino-vit-small-adamw": NOTES_VIT_S, "dino-resnet50-lars": NOTES_RESNET}
SMOKE_SUFFIX = "-synthetic-smoke"
FOLLOW_UPS = ("evaluate-knn-linear", "landscape-2d")

# What a smoke variant may scale down; every other notes value must stay the recipe's.
SCALED_DOWN = {"epochs", "batch_size_per_gpu", "out_dim", "local_crops_number", "warmup_epochs",
               "warmup_teacher_temp_epochs", "num_workers"}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


def notes_options(notes: dict[str, Any]) -> dict[str, Any]:
    """The notes' values that are `dino` fields (launcher arguments and the architecture dropped)."""
    return {k: v for k, v in notes.items() if k not in REFERENCE_LAUNCHER_ARGS | {"arch", "patch_size"}}


def as_plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_the_documented_examples_exist() -> None:
    names = {path.stem for path in EXAMPLES.glob("*.yaml")}
    expected = {*RECIPES, *(f"{r}{SMOKE_SUFFIX}" for r in RECIPES), *FOLLOW_UPS}
    assert expected <= names, f"missing examples: {sorted(expected - names)}"


@pytest.mark.parametrize("path", sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("sweep-")),
                         ids=lambda p: p.name)
def test_every_example_is_a_valid_job_file(path: Path) -> None:
    """Every job file (the sweep-*.yaml files are sweeps: tests/api/test_sweeps.py posts them as written)."""
    body = yaml.safe_load(path.read_text())
    assert isinstance(body, dict) and {"type", "spec"} <= set(body), "a job file needs 'type' and 'spec'"
    assert set(body) <= JOB_FILE_KEYS, f"keys bosun submit ignores: {sorted(set(body) - JOB_FILE_KEYS)}"
    assert isinstance(body.get("name", ""), str) and body.get("name"), "examples carry a name"
    parse_spec(body["type"], body["spec"])


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_full_size_recipes_keep_the_notes_values_field_by_field(recipe: str) -> None:
    notes = RECIPES[recipe]
    spec = parse_spec("pretrain", load(recipe)["spec"])
    assert isinstance(spec, PretrainSpec) and spec.method == "dino"
    assert spec.backbone.name == backbone_for_reference_arch(notes["arch"], notes.get("patch_size", 16))
    assert spec.backbone.kwargs == {}
    for field, value in notes_options(notes).items():
        assert as_plain(getattr(spec.dino, field)) == value, f"{recipe}: dino.{field}"
    assert spec.resolved_amp == "none"  # use_fp16 false: the notes trained in fp32


def test_recipes_equal_the_reference_conversion_of_the_notes() -> None:
    vit = parse_spec("pretrain", load("dino-vit-small-adamw")["spec"])
    assert vit.dino == dino_spec_from_reference(NOTES_VIT_S, dataset=vit.dataset.model_dump()).dino

    resnet = parse_spec("pretrain", load("dino-resnet50-lars")["spec"])
    converted = dino_spec_from_reference(NOTES_RESNET, dataset=resnet.dataset.model_dump())
    # The reference's torchvision ResNet has no stochastic depth; timm's resnet50 would apply main_dino.py's
    # default drop_path_rate of 0.1, so the recipe sets 0 and otherwise equals the conversion.
    assert resnet.dino.drop_path_rate == 0.0
    assert resnet.dino.model_dump(exclude={"drop_path_rate"}) == converted.dino.model_dump(exclude={"drop_path_rate"})


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_smoke_variants_scale_the_recipe_down_and_keep_its_character(recipe: str) -> None:
    full = parse_spec("pretrain", load(recipe)["spec"])
    smoke = parse_spec("pretrain", load(f"{recipe}{SMOKE_SUFFIX}")["spec"])
    assert smoke.method == "dino" and smoke.dataset.kind == "synthetic-maritime"
    for field in notes_options(RECIPES[recipe]).keys() - SCALED_DOWN:
        assert getattr(smoke.dino, field) == getattr(full.dino, field), f"{recipe}{SMOKE_SUFFIX}: dino.{field}"
    assert smoke.dino.drop_path_rate == full.dino.drop_path_rate
    assert smoke.dino.optimizer == full.dino.optimizer
    # small enough for a CPU: few epochs and crops of at most 32 px over a bounded subset
    assert smoke.dino.epochs <= 5 and smoke.dino.out_dim <= 4096 and smoke.dino.batch_size_per_gpu <= 32
    assert smoke.dataset.image_size == 32 and smoke.dataset.max_per_split is not None
    assert smoke.dataset.max_per_split // smoke.dino.batch_size_per_gpu >= 2, "at least two steps per epoch"
    # something to watch live and to resume from: metrics every step, k-NN and a checkpoint every epoch
    assert smoke.log_every == 1 and smoke.knn_every == 1 and smoke.checkpoint_every == 1
    assert smoke.backbone.name == full.backbone.name, "the recipe's architecture, only smaller inputs"


@pytest.mark.parametrize("name", FOLLOW_UPS)
def test_follow_up_examples_wait_for_the_pretrain_job_they_load(name: str) -> None:
    body = load(name)
    spec = parse_spec(body["type"], body["spec"])
    assert spec.source.kind == "job" and spec.source.artifact == "checkpoint.pt"
    assert body["depends_on"] == [spec.source.job], "depends_on must name the job whose checkpoint is loaded"
    smoke = parse_spec("pretrain", load(f"dino-vit-small-adamw{SMOKE_SUFFIX}")["spec"])
    assert spec.backbone == smoke.backbone, "the backbone must be the pretrain job's"
    assert spec.dataset.image_size == smoke.dataset.image_size


def test_landscape_example_scores_dino_loss_since_a_dino_checkpoint_has_no_classifier() -> None:
    spec = parse_spec("landscape", load("landscape-2d")["spec"])
    assert spec.metric == "dino_loss" and spec.is_2d and spec.dino is None  # the job's checkpoint.pt records them
