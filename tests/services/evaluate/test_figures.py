from __future__ import annotations

import numpy as np
import pytest

from services.evaluate.corruption_scores import RobustnessTable
from services.evaluate.figures import (
    COLUMN_IN,
    PAGE_IN,
    FigureLabel,
    confusion_figure,
    figure_files,
    heatmap_figure,
    heatmap_png,
    image_grid_figure,
    robustness_figure,
    source_text,
    text_colour,
)
from shared.specs.common import ModelSource
from tests.services.figure_checks import assert_figure, assert_png_at_300_dpi, svg_text

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
LABEL = FigureLabel("evaluate", 12, "job 7 checkpoint.pt", 100)


def test_label_names_job_source_and_epoch() -> None:
    assert LABEL.caption() == "evaluate job 12 · job 7 checkpoint.pt · epoch 100"
    assert LABEL.title("kNN") == "kNN\nevaluate job 12 · job 7 checkpoint.pt · epoch 100"
    assert FigureLabel().title("kNN") == "kNN"
    assert source_text(ModelSource(kind="job", job=7)) == "job 7 checkpoint.pt"
    assert source_text(ModelSource()) == "random init"


@pytest.mark.parametrize("classes", [["sea", "ship"], CIFAR10, [f"a rather long class name {i}" for i in range(12)],
                                     [f"c{i}" for i in range(60)]])
def test_confusion_figure_is_print_ready(classes: list[str]) -> None:
    rng = np.random.default_rng(0)
    n = len(classes)
    matrix = rng.integers(0, 20, (n, n)) + np.eye(n, dtype=int) * 300
    fig = confusion_figure(matrix, classes, title="kNN (k=20) confusion matrix", label=LABEL)
    assert COLUMN_IN <= fig.get_size_inches()[0] <= PAGE_IN + 1e-9
    assert_figure(fig, "kNN (k=20) confusion matrix", "evaluate job 12", "% of true class", "samples")


def test_confusion_shows_counts_beside_row_percentages() -> None:
    fig = confusion_figure(np.array([[3, 1], [0, 4]]), ["sea", "ship"], title="cm")
    counts, percent = (sorted(t.get_text() for t in ax.texts) for ax in fig.axes[:2])
    assert counts == ["0", "1", "3", "4"] and percent == ["0", "100", "25", "75"]


def test_cell_text_follows_cell_luminance() -> None:
    assert text_colour((1.0, 1.0, 1.0, 1.0)) == "black" and text_colour((0.03, 0.19, 0.42, 1.0)) == "white"
    fig = confusion_figure(np.array([[50, 0], [1, 49]]), ["sea", "ship"])
    colours = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    assert colours["50"] == "white" and colours["0"] == "black"


def test_heatmap_accepts_nan_and_rejects_wrong_labels() -> None:
    values = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    fig = heatmap_figure(values, ["a", "b"], ["1", "2", "3"], title="t", label=LABEL, colorbar="metric")
    png, _ = assert_figure(fig, "t", "metric")
    assert heatmap_png(values, ["a", "b"], ["1", "2", "3"], title="t", label=LABEL, colorbar="metric") == png
    with pytest.raises(ValueError, match="does not match"):
        heatmap_figure(values, ["a"], ["1", "2", "3"])


def test_robustness_figure_is_print_ready() -> None:
    corruptions = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur", "fog", "contrast"]
    table = RobustnessTable(corruptions, [1, 2, 3, 4, 5], np.linspace(0.9, 0.1, 35).reshape(7, 5), 0.93, 100)
    fig = robustness_figure(table, title="accuracy under corruption (%, on the fly, cifar10c parameters)", label=LABEL)
    assert_figure(fig, "accuracy under corruption", "clean 93.0", "top-1 accuracy (%)", "gaussian_noise", "mean")


def test_figure_files_are_png_and_svg_siblings() -> None:
    fig = heatmap_figure(np.eye(2), ["a", "b"], ["c", "d"], title="pair")
    files = figure_files("pair.png", fig)
    assert sorted(files) == ["pair.png", "pair.svg"]
    assert_png_at_300_dpi(files["pair.png"], fig)
    assert "pair" in svg_text(files["pair.svg"])
    with pytest.raises(ValueError, match=".png"):
        figure_files("pair.svg", fig)


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 5), (3, 14)])
def test_image_grid_is_print_ready_with_colour_bar_and_blank_note(rows: int, cols: int) -> None:
    rng = np.random.default_rng(0)
    grid = [[rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) if j % 2 else rng.random((4, 4))
             for j in range(cols)] for _ in range(rows)]
    grid[0][0] = np.zeros((4, 4))
    fig = image_grid_figure(grid, col_titles=[f"c{j}" for j in range(cols)], row_titles=["r"] * rows,
                            title="grid", label=LABEL, colorbar="weight")
    assert fig.get_size_inches()[0] <= PAGE_IN + 1e-9
    _, svg = assert_figure(fig, "grid", "weight", "all-zero map", "evaluate job 12")
    assert svg_text(svg).count("all-zero") == 1


def test_a_long_title_and_source_wrap_inside_the_figure() -> None:
    label = FigureLabel("evaluate", 3, "pretrained/" + "a_very_long_folder_name/" * 6 + "dino_vitsmall16.pth", 300)
    title = "t-SNE of vit_small_patch16_224 features (test split, perplexity 30, 2000 points of 10 classes)"
    fig = heatmap_figure(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], title=title, label=label)
    assert_figure(fig, "dino_vitsmall16.pth", "epoch 300")
