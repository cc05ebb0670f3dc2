import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from shared.specs.pretrain import DinoOptions, PretrainSpec, backbone_for_reference_arch, dino_spec_from_reference

# The two DINO configurations of the lab notes (research-notes.md, 14.11.2022), verbatim.
NOTES_VIT_S = json.loads("""{
  "arch": "vit_small", "patch_size": 16, "out_dim": 65536, "norm_last_layer": false,
  "warmup_teacher_temp": 0.04, "teacher_temp": 0.07, "warmup_teacher_temp_epochs": 30,
  "use_fp16": false, "weight_decay": 0.04, "weight_decay_end": 0.4, "clip_grad": 0,
  "batch_size_per_gpu": 64, "epochs": 800, "freeze_last_layer": 1, "lr": 0.0005,
  "warmup_epochs": 10, "min_lr": 1e-05, "global_crops_scale": [0.25, 1.0],
  "local_crops_scale": [0.05, 0.25], "local_crops_number": 10, "seed": 0, "num_workers": 10,
  "world_size": 16, "ngpus": 8, "nodes": 2, "optimizer": "adamw", "momentum_teacher": 0.996,
  "use_bn_in_head": false, "drop_path_rate": 0.1
}""")
NOTES_RESNET = json.loads("""{
  "arch": "resnet50", "out_dim": 60000, "norm_last_layer": true, "warmup_teacher_temp": 0.04,
  "teacher_temp": 0.07, "warmup_teacher_temp_epochs": 50, "use_fp16": false,
  "weight_decay": 0.000001, "weight_decay_end": 0.000001, "clip_grad": 0, "batch_size_per_gpu": 51,
  "epochs": 800, "freeze_last_layer": 1, "lr": 0.3, "warmup_epochs": 10, "min_lr": 0.0048,
  "global_crops_scale": [0.14, 1.0], "local_crops_scale": [0.05, 0.14], "local_crops_number": 6,
  "seed": 0, "num_workers": 10, "world_size": 80, "optimizer": "lars", "momentum_teacher": 0.996,
  "use_bn_in_head": true
}""")
DATASET = {"kind": "synthetic-maritime"}


def test_dino_defaults_match_main_dino_arguments():
    d = DinoOptions()
    assert (d.out_dim, d.norm_last_layer, d.momentum_teacher, d.use_bn_in_head) == (65536, True, 0.996, False)
    assert (d.warmup_teacher_temp, d.teacher_temp, d.warmup_teacher_temp_epochs) == (0.04, 0.04, 0)
    assert (d.use_fp16, d.weight_decay, d.weight_decay_end, d.clip_grad) == (True, 0.04, 0.4, 3.0)
    assert (d.batch_size_per_gpu, d.epochs, d.freeze_last_layer, d.lr) == (64, 100, 1, 0.0005)
    assert (d.warmup_epochs, d.min_lr, d.optimizer, d.drop_path_rate) == (10, 1e-6, "adamw", 0.1)
    assert (d.global_crops_scale, d.local_crops_number, d.local_crops_scale) == ((0.4, 1.0), 8, (0.05, 0.4))
    assert (d.seed, d.num_workers) == (0, 10)


def test_notes_vit_small_config_validates():
    spec = dino_spec_from_reference(NOTES_VIT_S, dataset=DATASET)
    assert spec.backbone.name == "vit_small_patch16_224"
    assert spec.dino.teacher_temp == 0.07 and spec.dino.warmup_teacher_temp_epochs == 30
    assert spec.dino.norm_last_layer is False and spec.dino.local_crops_number == 10
    assert spec.dino.global_crops_scale == (0.25, 1.0) and spec.dino.clip_grad == 0
    assert spec.resolved_amp == "none"


def test_notes_resnet_config_validates():
    spec = dino_spec_from_reference(NOTES_RESNET, dataset=DATASET, knn_every=0)
    assert spec.backbone.name == "resnet50"
    assert spec.dino.optimizer == "lars" and spec.dino.use_bn_in_head is True
    assert spec.dino.out_dim == 60000 and spec.dino.batch_size_per_gpu == 51 and spec.knn_every == 0


def test_reference_conversion_reports_unknown_arguments():
    with pytest.raises(ValidationError, match="not_a_dino_arg"):
        dino_spec_from_reference({**NOTES_VIT_S, "not_a_dino_arg": 1}, dataset=DATASET)
    with pytest.raises(ValueError, match="no timm backbone"):
        backbone_for_reference_arch("vit_small", patch_size=13)
    assert backbone_for_reference_arch("deit_tiny", 16) == "vit_tiny_patch16_224"


def test_method_fills_its_block_and_rejects_others():
    spec = PretrainSpec(method="simclr", backbone={"name": "resnet18"}, dataset=DATASET)
    assert spec.contrastive is not None and spec.dino is None and spec.options is spec.contrastive
    assert spec.options.optimizer == "lars" and spec.resolved_amp == "none"
    with pytest.raises(ValidationError, match="'dino' block does not apply"):
        PretrainSpec(method="supervised", backbone={"name": "resnet18"}, dataset=DATASET, dino={})
    assert PretrainSpec(method="dino", backbone={"name": "resnet18"}, dataset=DATASET).resolved_amp == "fp16"


@pytest.mark.parametrize("change,message", [
    ({"dino": {"use_fp16": True}, "amp": "bf16"}, "contradicts"),
    ({"dino": {"global_crops_scale": [0.5, 0.2]}}, "crop scale"),
    ({"dino": {"epochs": 5, "warmup_epochs": 10}}, "warmup_epochs"),
    ({"dino": {"lr_typo": 1}}, "lr_typo"),
    ({"method": "supervised", "supervised": {"sam_rho": 0.05}, "amp": "fp16"}, "SAM"),
    ({"method": "supervised", "supervised": {"mixup_alpha": 0.2, "batch_size_per_gpu": 3}}, "even"),
    ({"backbone": {"name": "resnet_9000"}}, "unknown timm backbone"),
    ({"amp": "fp8"}, "amp"),
])
def test_invalid_specs_are_reported_by_field(change, message):
    raw = {"method": "dino", "backbone": {"name": "resnet18"}, "dataset": DATASET, **change}
    with pytest.raises(ValidationError, match=message):
        PretrainSpec.model_validate(raw)


def test_spec_roundtrips_through_json():
    spec = dino_spec_from_reference(NOTES_VIT_S, dataset=DATASET, amp="bf16")
    again = PretrainSpec.model_validate_json(spec.model_dump_json())
    assert again == spec


def test_spec_module_does_not_import_torch():
    code = "import sys, shared.specs.pretrain; sys.exit('torch' in sys.modules or 'numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("amp", ["none", "bf16", "fp16"])
def test_amp_without_use_fp16_reads_back_from_the_stored_dump(amp):
    """The API stores `model_dump(mode='json')`, which holds every default; the worker validates it again."""
    spec = PretrainSpec(method="dino", backbone={"name": "resnet18"}, dataset=DATASET, amp=amp)
    assert spec.dino.use_fp16 == (amp == "fp16") and spec.resolved_amp == amp
    assert PretrainSpec.model_validate(spec.model_dump(mode="json")) == spec
