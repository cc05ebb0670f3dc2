from __future__ import annotations

import numpy as np
import pytest
import torch

from services.evaluate.corruption_scores import (
    LEGACY_SOURCES,
    RobustnessTable,
    robustness_summary,
    robustness_table,
    table_source,
    tensor_predictor,
)
from services.evaluate.figures import figure_files, robustness_figure
from services.job_context import JobStopped
from shared.specs.evaluate import RobustnessSpec
from tests.services.figure_checks import svg_text

from .conftest import png_size


def _bright_or_dark() -> tuple[np.ndarray, np.ndarray]:
    """Uniform grey images: two dark (100, class 0), two bright (200, class 1)."""
    values = [100, 200, 100, 200]
    images = np.stack([np.full((16, 16, 3), v, np.uint8) for v in values])
    return images, np.array([int(v > 128) for v in values])


def _threshold_model(batch: np.ndarray) -> np.ndarray:
    return (batch.reshape(len(batch), -1).mean(axis=1) > 128).astype(np.int64)


def test_table_of_a_known_classifier() -> None:
    images, labels = _bright_or_dark()
    steps: list[tuple[int, int]] = []
    table = robustness_table(_threshold_model, images, labels, corruptions=["contrast", "brightness"],
                             parameter_set="imagenetc", on_step=lambda done, total: steps.append((done, total)))
    assert table.accuracy.shape == (2, 5)
    assert table.clean_accuracy == 1.0 and table.n_images == 4
    # contrast leaves a uniform image as it is
    assert table.accuracy[0].tolist() == [1.0] * 5
    # brightness adds 0.1 * severity to V: dark 100/255 crosses 128 from severity 2 on
    assert table.accuracy[1].tolist() == [1.0, 0.5, 0.5, 0.5, 0.5]
    assert steps[-1] == (10, 10) and len(steps) == 10


def test_auto_parameters_follow_the_image_size_and_every_table_names_its_source() -> None:
    images, labels = _bright_or_dark()
    auto = robustness_table(_threshold_model, images, labels, corruptions=["brightness"])
    assert np.array_equal(auto.accuracy, robustness_table(_threshold_model, images, labels, corruptions=["brightness"],
                                                          parameter_set="cifar10c").accuracy)
    # CIFAR-10-C's brightness adds 0.05, 0.1, 0.15, ...: dark 100/255 crosses 128 at severity 3
    assert auto.accuracy[0].tolist() == [1.0, 1.0, 0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="unknown corruption parameter set"):
        robustness_table(lambda batch: pytest.fail("classified"), images, labels, parameter_set="cifar100c")
    on_the_fly = RobustnessSpec()
    assert table_source(on_the_fly, 32) == ("on-the-fly (CIFAR-10-C-style, parameters: cifar10c)", "cifar10c")
    assert table_source(on_the_fly, 224) == ("on-the-fly (CIFAR-10-C-style, parameters: imagenetc)", "imagenetc")
    assert table_source(RobustnessSpec(parameter_set="cifar10c"), 224)[1] == "cifar10c"
    assert table_source(RobustnessSpec(cifar10c_path="CIFAR-10-C"), 32) == ("released CIFAR-10-C files", None)
    assert LEGACY_SOURCES == {"on-the-fly": "on-the-fly (CIFAR-10-C-style, parameters: imagenetc)",
                              "cifar10c": "released CIFAR-10-C files"}


def test_table_is_deterministic_and_independent_of_batch_size() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(90, 170, (6, 16, 16, 3), dtype=np.uint8)
    labels = _threshold_model(images)
    kwargs = dict(corruptions=["gaussian_noise", "shot_noise"], severities=[3, 5], seed=4)
    a = robustness_table(_threshold_model, images, labels, batch_size=1, **kwargs)
    b = robustness_table(_threshold_model, images, labels, batch_size=64, **kwargs)
    assert np.array_equal(a.accuracy, b.accuracy)
    c = robustness_table(_threshold_model, images, labels, batch_size=4, **{**kwargs, "corruptions": ["shot_noise"]})
    assert np.array_equal(c.accuracy[0], a.accuracy[1])


def test_summary_formulas_of_hendrycks_and_dietterich() -> None:
    table = RobustnessTable(["fog", "snow"], [1, 2], np.array([[0.5, 0.5], [0.8, 0.6]]), 0.9, 10)
    baseline = RobustnessTable(["snow", "fog"], [1, 2, 3], np.array([[0.6, 0.6, 0.1], [0.0, 0.5, 0.1]]), 1.0, 10)
    plain = robustness_summary(table)
    assert plain["mean_accuracy"] == pytest.approx(60.0)
    assert plain["mean_corruption_error"] == pytest.approx(40.0)
    assert plain["per_corruption"]["snow"] == pytest.approx({"accuracy": 70.0, "error": 30.0})
    assert "mce" not in plain
    summary = robustness_summary(table, baseline)
    assert summary["per_corruption"]["fog"]["ce"] == pytest.approx(100 * 100 / 150)
    assert summary["per_corruption"]["snow"]["ce"] == pytest.approx(100 * 60 / 80)
    assert summary["mce"] == pytest.approx((100 * 100 / 150 + 75.0) / 2)
    assert summary["per_corruption"]["fog"]["relative_ce"] == pytest.approx(100 * 80 / 150)
    assert summary["per_corruption"]["snow"]["relative_ce"] == pytest.approx(100 * 40 / 80)
    assert summary["relative_mce"] == pytest.approx((100 * 80 / 150 + 50.0) / 2)


def test_undefined_ce_and_incomplete_baseline() -> None:
    table = RobustnessTable(["fog", "snow"], [1], np.array([[0.5], [0.5]]), 1.0, 2)
    perfect_fog = RobustnessTable(["fog", "snow"], [1], np.array([[1.0], [0.5]]), 1.0, 2)
    summary = robustness_summary(table, perfect_fog)
    assert summary["per_corruption"]["fog"]["ce"] is None
    assert summary["mce"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="lacks snow"):
        robustness_summary(table, RobustnessTable(["fog"], [1], np.array([[0.5]]), 1.0, 2))


def test_table_round_trips_and_plots() -> None:
    table = RobustnessTable(["fog", "snow", "frost"], [1, 2], np.array([[0.5, 0.4], [0.8, 0.6], [0.1, 0.0]]), 0.9, 5)
    again = RobustnessTable.from_dict(table.to_dict())
    assert again.corruptions == table.corruptions and np.array_equal(again.accuracy, table.accuracy)
    files = figure_files("robustness.png", robustness_figure(table))  # the one robustness figure
    assert sorted(files) == ["robustness.png", "robustness.svg"]
    width, height = png_size(files["robustness.png"])
    assert width > 100 and height > 100
    assert "clean 90.0" in svg_text(files["robustness.svg"])
    with pytest.raises(ValueError, match="does not match"):
        RobustnessTable.from_dict({**table.to_dict(), "severities": [1]})


def test_invalid_requests_raise_and_stop_is_honoured() -> None:
    images, labels = _bright_or_dark()
    with pytest.raises(ValueError, match="unknown corruptions"):
        robustness_table(_threshold_model, images, labels, corruptions=["spatter"])
    with pytest.raises(ValueError, match="severities"):
        robustness_table(_threshold_model, images, labels, severities=[0])
    with pytest.raises(ValueError, match="labels"):
        robustness_table(_threshold_model, images, labels[:2])
    with pytest.raises(JobStopped):
        robustness_table(_threshold_model, images, labels, should_stop=lambda: True)


def test_tensor_predictor_normalizes_and_takes_argmax() -> None:
    seen: list[torch.Tensor] = []

    def scores(x: torch.Tensor) -> torch.Tensor:
        seen.append(x)
        return torch.stack([-x.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3))], dim=1)

    predict = tensor_predictor(scores, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    images, labels = _bright_or_dark()
    assert predict(images).tolist() == labels.tolist()
    assert seen[0].shape == (4, 3, 16, 16)
    assert seen[0][0, 0, 0, 0].item() == pytest.approx((100 / 255 - 0.5) / 0.25)
    grey = tensor_predictor(scores, mean=[0.5], std=[0.25])(images[..., 0])
    assert grey.tolist() == labels.tolist() and seen[-1].shape == (4, 1, 16, 16)
