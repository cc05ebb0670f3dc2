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
