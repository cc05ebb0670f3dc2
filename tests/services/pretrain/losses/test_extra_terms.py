"""Plugin loss terms in DINO (services.pretrain.losses.extra_terms) with the example plugin tests/plugins/focal."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from services.pretrain.methods import build_method
from shared.plugins import PluginError, UnknownPlugin
from tests.services.pretrain.helpers import spec

FOCAL = Path(__file__).resolve().parents[3] / "plugins" / "focal"

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def focal_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FOCAL))


def dino(extra_losses: list[dict]):
    """A tiny DINO without stochastic depth, so a second forward pass gives the same outputs."""
    return build_method(spec("dino", options={"extra_losses": extra_losses, "drop_path_rate": 0.0}),
                        num_classes=2, img_size=16)


def test_the_dino_loss_adds_the_weighted_term_and_logs_it() -> None:
    torch.manual_seed(0)
    method = dino([{"name": "focal", "weight": 0.25, "params": {"gamma": 0.0}}])
    crops = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16), torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)]
    total = method.loss(crops, epoch=0)
    student, teacher = method.run_student(crops), method.teacher(crops[:2])
    # gamma 0: the focal term is the cross-entropy against the teacher's argmax over the pairs DINO uses
    targets = teacher.argmax(-1).chunk(2)
    views = (student / 0.1).chunk(4)
    ce = torch.stack([F.cross_entropy(v, t) for i, t in enumerate(targets) for j, v in enumerate(views) if i != j])
    focal = method.step_metrics(0, 0)["loss_focal"]
    assert focal == pytest.approx(ce.mean().item(), rel=1e-4)
    method.dino_loss.center.zero_()
    dino_only = method.dino_loss(student, teacher, 0)
    assert total.item() == pytest.approx(dino_only.item() + 0.25 * focal, rel=1e-4)


def test_a_term_given_params_it_does_not_take_fails_naming_them() -> None:
    with pytest.raises(PluginError, match=r"plugin 'focal' does not take params \{'alpha': 1\}"):
        dino([{"name": "focal", "params": {"alpha": 1}}])


def test_an_uninstalled_term_fails_naming_it() -> None:
    with pytest.raises(UnknownPlugin, match="no bosun.losses plugin 'dice' is installed here; known: focal"):
        dino([{"name": "dice"}])
