from __future__ import annotations

import math

import pytest
import torch

from services.evaluate.linear import cosine_lr, linear_probe, vit_feature_fn, vit_features
from services.job_context import JobStopped


def _separable(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs around well-separated class centres: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 6.0
    labels = torch.arange(n) % classes
    return centres[labels] + 0.3 * torch.randn(n, dim, generator=g), labels


def test_separable_features_reach_full_accuracy() -> None:
    x_train, y_train = _separable(120, 16, 4, seed=0)
    x_val, y_val = _separable(40, 16, 4, seed=1)
    seen: list[int] = []
    result = linear_probe(x_train, y_train, x_val, y_val, num_classes=4, epochs=15, lr=0.5, batch_size=32,
                          on_epoch=lambda epoch, stats: seen.append(epoch))
    assert result.final["top1"] == 1.0
    assert result.best_val["top1"] == 1.0
    assert 1 <= result.best_epoch <= 15
    assert seen == list(range(1, 16))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert (result.head(x_val).argmax(1) == y_val).all()
    assert set(result.summary()) == {"final", "best_val", "best_epoch", "epochs", "history"}


def test_best_is_the_maximum_over_epochs_and_final_the_last() -> None:
    x_train, y_train = _separable(60, 8, 3, seed=2)
    x_val = torch.randn(30, 8, generator=torch.Generator().manual_seed(3))
    y_val = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(4))
    result = linear_probe(x_train, y_train, x_val, y_val, num_classes=3, epochs=6, lr=1.0, batch_size=16)
    top1 = [h["top1"] for h in result.history]
    assert result.best_val["top1"] == max(top1)
    assert result.best_epoch == top1.index(max(top1)) + 1
    assert result.final["top1"] == top1[-1]


def test_probe_is_deterministic_by_seed_and_follows_cosine_schedule() -> None:
    x, y = _separable(40, 8, 2, seed=5)
    a = linear_probe(x, y, x, y, num_classes=2, epochs=4, lr=0.1, batch_size=8, seed=3)
    b = linear_probe(x, y, x, y, num_classes=2, epochs=4, lr=0.1, batch_size=8, seed=3)
    assert torch.equal(a.head.weight, b.head.weight)
    base = 0.1 * 8 / 256
    assert [h["lr"] for h in a.history] == pytest.approx([cosine_lr(base, e, 4) for e in range(4)])
    assert cosine_lr(1.0, 0, 10) == 1.0 and cosine_lr(1.0, 5, 10) == pytest.approx(0.5)
    assert cosine_lr(1.0, 9, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))


def test_probe_stops_and_validates() -> None:
    x, y = _separable(10, 4, 2, seed=6)
    with pytest.raises(JobStopped):
        linear_probe(x, y, x, y, num_classes=2, epochs=3, should_stop=lambda: True)
    with pytest.raises(ValueError, match="epochs"):
        linear_probe(x, y, x, y, num_classes=2, epochs=0)


@pytest.fixture(scope="module")
def vit() -> torch.nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=3, num_classes=0).eval()


def _manual_tokens(model: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Normed output tokens of every block, computed by walking the blocks by hand."""
    x = model._pos_embed(model.patch_embed(images))
    x = model.norm_pre(x)
    outs = []
    for block in model.blocks:
        x = block(x)
        outs.append(model.norm(x))
    return outs


@pytest.mark.parametrize("n, avgpool", [(1, False), (2, False), (1, True), (3, True)])
def test_vit_features_are_dino_concatenation(vit: torch.nn.Module, n: int, avgpool: bool) -> None:
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = vit_features(vit, images, n_last_blocks=n, avgpool=avgpool)
        tokens = _manual_tokens(vit, images)
    expected = [t[:, 0] for t in tokens[-n:]] + ([tokens[-1][:, 1:].mean(1)] if avgpool else [])
    assert feats.shape == (2, 192 * (n + int(avgpool)))
    torch.testing.assert_close(feats, torch.cat(expected, dim=-1), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(vit_feature_fn(n, avgpool)(vit, images), feats)


def test_vit_features_reject_bad_inputs(vit: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="n_last_blocks"):
        vit_features(vit, torch.randn(1, 3, 32, 32), n_last_blocks=4)
    with pytest.raises(ValueError, match="ViT"):
        vit_features(torch.nn.Conv2d(3, 4, 3), torch.randn(1, 3, 32, 32))
