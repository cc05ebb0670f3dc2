import pytest
from pydantic import ValidationError

from shared.specs.landscape import LandscapeSpec

BASE = {"backbone": {"name": "resnet18"}, "dataset": {"kind": "cifar10", "path": "cifar10"}}


def _error(**fields) -> str:
    with pytest.raises(ValidationError) as info:
        LandscapeSpec.model_validate({**BASE, **fields})
    return str(info.value)


def test_defaults_are_a_51x51_filter_normalized_surface():
    spec = LandscapeSpec.model_validate(BASE)
    assert spec.mode == "2d" and spec.x == (-1.0, 1.0, 51) and spec.y == (-1.0, 1.0, 51)
    assert (spec.dir_type, spec.ignore, spec.norm, spec.bn_mode, spec.metric) == ("weights", "biasbn", "filter",
                                                                                  "eval", "ce")
    assert spec.subset_count(500) == 500


@pytest.mark.parametrize("field,value,message", [
    ("x", [-1, 1, 1], "x: num must be between 2 and 201"),
    ("y", [-1, 1, 202], "y: num must be between 2 and 201"),
    ("x", [1, 1, 5], "x: min must be below max"),
    ("y", [0.5, -0.5, 5], "y: min must be below max"),
])
def test_bad_ranges_name_the_field(field, value, message):
    assert message in _error(**{field: value})


def test_mode_specific_fields():
    assert "source_b is required" in _error(mode="interpolate")
    assert "source_b is only used" in _error(source_b={"kind": "job", "job": 3})
    assert "y is only used" in _error(mode="1d", y=[-1, 1, 5])
    spec = LandscapeSpec.model_validate({**BASE, "mode": "interpolate", "source_b": {"kind": "job", "job": 3},
                                         "x": [-0.5, 1.5, 41], "dir_type": "states"})
    assert spec.source_b.job == 3 and not spec.is_2d


def test_subset_choices():
    assert "not both" in _error(subset_size=10, subset_fraction=0.1)
    assert "subset_fraction" in _error(subset_fraction=0.0)
    assert LandscapeSpec.model_validate({**BASE, "subset_fraction": 0.1}).subset_count(1000) == 100
    spec = LandscapeSpec.model_validate({**BASE, "subset_size": 50})
    assert spec.subset_count(80) == 50
    with pytest.raises(ValueError, match="subset_size 50 exceeds"):
        spec.subset_count(20)


def test_unknown_fields_and_choices_are_rejected():
    assert "xrange" in _error(xrange=[0, 1, 3])
    assert "metric" in _error(metric="mse")
    assert "unknown timm backbone" in _error(backbone={"name": "resnet_9000"})


FILE = {"kind": "file", "path": "dino-training.pt"}


@pytest.mark.parametrize("metric,source", [
    ("dino_loss", FILE), ("dino_loss", {"kind": "job", "job": 4}),
    ("probe_ce", FILE), ("probe_ce", {"kind": "job", "job": 4}), ("probe_ce", {"kind": "random"}),
    ("ce", {"kind": "job", "job": 4}), ("dino", FILE),
])
def test_metrics_accept_the_checkpoints_they_can_score(metric, source):
    spec = LandscapeSpec.model_validate({**BASE, "metric": metric, "source": source})
    assert spec.metric == metric and spec.dino is None


@pytest.mark.parametrize("fields,message", [
    ({"metric": "dino_loss"}, "metric 'dino_loss' needs a DINO pretraining checkpoint as source, not a random init"),
    ({"metric": "dino_loss", "mode": "interpolate", "source": FILE, "source_b": FILE}, "use mode '1d' or '2d'"),
    ({"metric": "probe_ce", "mode": "interpolate", "source_b": {"kind": "job", "job": 4}}, "use mode '1d' or '2d'"),
    ({"metric": "ce", "dino": {"out_dim": 32}}, "dino options are only used with metric 'dino_loss'"),
    ({"metric": "dino_loss", "source": FILE, "dino": {"out_dim": 1}}, "out_dim"),
])
def test_metrics_refuse_checkpoints_they_cannot_score(fields, message):
    assert message in _error(**fields)


def test_dino_loss_takes_the_pretraining_runs_dino_options():
    spec = LandscapeSpec.model_validate({**BASE, "metric": "dino_loss", "source": FILE,
                                         "dino": {"out_dim": 32, "local_crops_number": 2, "teacher_temp": 0.07}})
    assert (spec.dino.out_dim, spec.dino.crops_per_image, spec.dino.teacher_temp) == (32, 4, 0.07)


def test_the_api_answers_a_refused_combination_with_a_422_naming_it():
    from fastapi import HTTPException

    from api.validation import job_create_from

    with pytest.raises(HTTPException) as info:
        job_create_from({"type": "landscape", "spec": {**BASE, "metric": "dino_loss"}})
    assert info.value.status_code == 422
    assert "needs a DINO pretraining checkpoint" in info.value.detail[0]["msg"]


def test_the_readme_dino_loss_example_is_a_valid_spec():
    import re
    from pathlib import Path

    import yaml

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S) if "metric: dino_loss" in b]
    spec = LandscapeSpec.model_validate(yaml.safe_load(block))
    assert spec.metric == "dino_loss" and spec.dino is None and spec.source.kind == "job" and spec.source.job == 12


def test_precision_auto_is_bf16_only_on_a_gpu_that_has_it(monkeypatch):
    import torch

    from services.landscape.labels import autocast_dtype, precision

    auto = LandscapeSpec.model_validate(BASE)
    assert auto.amp == "auto" and precision(auto, "cpu") == "fp32" and autocast_dtype(auto, "cpu") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert precision(auto, "cuda:0") == "bf16" == autocast_dtype(auto, "cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert precision(auto, "cuda") == "fp32"
    for amp, expected in (("fp32", "fp32"), (None, "fp32"), ("fp16", "fp16"), ("bf16", "bf16")):
        spec = LandscapeSpec.model_validate({**BASE, "amp": amp})
        assert precision(spec, "cuda") == expected, amp
