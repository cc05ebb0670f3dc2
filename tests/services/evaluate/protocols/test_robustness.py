"""The robustness protocol's result: the summary's percentages, fractions in the headline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from services.evaluate.protocols.robustness import RobustnessResult, uint8_image

ON_THE_FLY = "on-the-fly (CIFAR-10-C-style, parameters: cifar10c)"
SUMMARY_KEYS = ["unit", "clean_accuracy", "mean_accuracy", "mean_corruption_error", "per_corruption", "accuracy",
                "corruptions", "severities", "n_images"]


def summary(**extra: Any) -> dict[str, Any]:
    return {"unit": "percent", "clean_accuracy": 50.0, "mean_accuracy": 47.91666666666667,
            "mean_corruption_error": 52.08333333333333, "per_corruption": {}, "accuracy": [[50.0, 45.8]],
            "corruptions": ["contrast"], "severities": [1, 5], "n_images": 12, **extra}


def test_without_a_baseline() -> None:
    result = RobustnessResult(summary(), "linear", ON_THE_FLY, None, "cifar10c")
    assert list(result.section()) == [*SUMMARY_KEYS, "classifier", "source", "parameter_set", "baseline_job"]
    assert result.section()["source"] == ON_THE_FLY and result.section()["parameter_set"] == "cifar10c"
    assert result.section()["classifier"] == "linear" and result.section()["baseline_job"] is None
    assert result.headline() == {"robustness_clean_accuracy": 0.5,
                                 "robustness_mean_accuracy": pytest.approx(0.4791666666666667)}
    assert result.summary() == "mean accuracy 47.9% (clean 50.0%)"


def test_with_a_baseline_undefined_numbers_stay_out_of_the_headline() -> None:
    result = RobustnessResult(summary(mce=69.44444444444444, relative_mce=None), "knn (k=20)", ON_THE_FLY, 1,
                              "cifar10c")
    assert list(result.section()) == [*SUMMARY_KEYS, "mce", "relative_mce", "classifier", "source", "parameter_set",
                                      "baseline_job"]
    assert result.section()["relative_mce"] is None
    assert result.headline() == {"robustness_clean_accuracy": 0.5,
                                 "robustness_mean_accuracy": pytest.approx(0.4791666666666667),
                                 "mce": 69.44444444444444}
    assert result.summary() == "mean accuracy 47.9% (clean 50.0%), mCE 69.4"
    both = RobustnessResult(summary(mce=90.0, relative_mce=120.5), "knn (k=20)", "released CIFAR-10-C files", 3)
    assert both.headline()["relative_mce"] == 120.5 and both.section()["parameter_set"] is None


@pytest.mark.parametrize(("mode", "shape"), [("RGB", (8, 8, 3)), ("L", (8, 8)), ("F", (8, 8))])
def test_images_become_uint8_at_the_input_size(mode: str, shape: tuple[int, ...]) -> None:
    value = 0.5 if mode == "F" else 128
    image = uint8_image(Image.new(mode, (16, 16), value if mode != "RGB" else (value,) * 3), 8)
    assert image.dtype == np.uint8 and image.shape == shape and int(image.max()) == 128
