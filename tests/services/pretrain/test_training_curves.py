"""The training-curves figure: drawn from a tiny DINO run's own metrics, at print quality."""

import pytest
import torch

from services.evaluate.figures import COLUMN_IN, FigureLabel
from services.pretrain.curves import training_curves_figure
from services.pretrain.pretrain_job import run
from tests.services.figure_checks import assert_figure, at_300_dpi, png_pixels, svg_text
from tests.services.pretrain.helpers import local
from tests.services.pretrain.test_pretrain_job import dino_spec, write_folder_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("curves")
    write_folder_dataset(root / "data")
    ctx = local(root / "job4", job_id=4, data_root=root / "data")
    return run(dino_spec(), ctx), ctx


def test_a_pretraining_writes_its_training_curves(tiny_run):
    result, ctx = tiny_run
    png = ctx.artifact_path("training_curves.png").read_bytes()
    svg = svg_text(ctx.artifact_path("training_curves.svg").read_bytes())
    assert at_300_dpi(png_pixels(png)[0], COLUMN_IN)
    assert "dino pretraining of test_vit" in svg and "pretrain job 4 · random init · epoch 2" in svg
    assert "kNN top-1 (%)" in svg and "learning rate" in svg and "epoch" in svg
    assert result["epochs"] == 2


def test_the_figure_of_the_recorded_metrics_is_print_ready(tiny_run):
    result, ctx = tiny_run
    curves = {name: ctx.metrics[name] for name in ("loss", "lr", "knn_top1")}
    fig = training_curves_figure(curves, niter_per_epoch=result["iterations"] // result["epochs"],
                                 title="dino pretraining", label=FigureLabel("pretrain", 4, "random init", 2))
    assert_figure(fig, "dino pretraining", "pretrain job 4", "loss", "kNN top-1 (%)")
    knn_axis = fig.axes[2]
    assert list(knn_axis.get_lines()[0].get_xdata()) == [1.0, 2.0]


def test_many_epochs_of_a_falling_loss_use_a_log_scale_and_stay_readable():
    steps = range(1, 10_001, 10)
    curves = {"loss": {s: 10.0 * (1 + s) ** -0.5 for s in steps}, "lr": {s: 5e-4 * (1 - s / 10_001) for s in steps}}
    fig = training_curves_figure(curves, niter_per_epoch=100, label=FigureLabel("pretrain", 1, epoch=100))
    assert_figure(fig, "training curves", "pretrain job 1 · epoch 100")
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes) == 2


def test_nothing_recorded_is_refused():
    with pytest.raises(ValueError, match="no training metric"):
        training_curves_figure({"loss": {}}, niter_per_epoch=1)
