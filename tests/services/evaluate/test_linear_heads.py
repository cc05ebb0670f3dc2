"""The linear probe against DINOv2's per-head setup (facebookresearch/dinov2 `eval/linear.py`),
re-written here: one nn.Linear per rate (N(0, 0.01) weights, zero bias), each with its own SGD
(momentum 0.9) at lr * batch / 256 on a cosine schedule, all on the same batches."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from services.evaluate.linear_heads import cosine_lr, linear_probe, vit_feature_fn, vit_features
from services.job_context import JobStopped
from shared.specs.evaluate import DINOV2_LRS, LINEAR_LRS


def _separable(n: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs around well-separated class centres: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(classes, dim) * 6.0
    labels = torch.arange(n) % classes
    return centres[labels] + 0.3 * torch.randn(n, dim, generator=g), labels


def _reference_heads(x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, *, lrs: list[float],
                     epochs: int, batch_size: int, classes: int, seed: int) -> tuple[list[nn.Linear], list[float]]:
    """Each head trained on its own, as DINOv2 sets them up; the init and batch order drawn as the probe draws them."""
    generator = torch.Generator().manual_seed(seed)
    heads = []
    for _ in lrs:
        head = nn.Linear(x.shape[1], classes)
        with torch.no_grad():
            head.weight.normal_(0.0, 0.01, generator=generator)
            head.bias.zero_()
        heads.append(head)
    optimizers = [torch.optim.SGD(h.parameters(), lr=lr * batch_size / 256, momentum=0.9)
                  for h, lr in zip(heads, lrs, strict=True)]
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=0) for o in optimizers]
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            for head, optimizer in zip(heads, optimizers, strict=True):
                optimizer.zero_grad()
                F.cross_entropy(head(x[idx]), y[idx]).backward()
                optimizer.step()
        for scheduler in schedulers:
            scheduler.step()
    with torch.no_grad():
        val_top1 = [(h(x_val).argmax(1) == y_val).float().mean().item() for h in heads]
    return heads, val_top1


def test_every_head_trains_as_dinov2_sets_it_up() -> None:
    x, y = _separable(90, 12, 3, seed=0)
    x_val = torch.randn(40, 12, generator=torch.Generator().manual_seed(1)) * 3
    y_val = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(2))
    lrs = [0.001, 0.05, 0.3, 2.0]
    result = linear_probe(x, y, x_val, y_val, num_classes=3, epochs=5, lrs=lrs, batch_size=16, seed=4)
    heads, val_top1 = _reference_heads(x, y, x_val, y_val, lrs=lrs, epochs=5, batch_size=16, classes=3, seed=4)
    assert [r["lr"] for r in result.lr_search] == lrs
    assert [r["scaled_lr"] for r in result.lr_search] == pytest.approx([lr * 16 / 256 for lr in lrs])
    assert [r["val_top1"] for r in result.lr_search] == pytest.approx(val_top1)
    chosen = lrs.index(result.lr)
    torch.testing.assert_close(result.head.weight, heads[chosen].weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result.head.bias, heads[chosen].bias, rtol=1e-4, atol=1e-5)


def test_the_best_head_on_val_is_chosen_ties_by_val_loss() -> None:
    x_train, y_train = _separable(120, 16, 4, seed=0)
    x_val, y_val = _separable(40, 16, 4, seed=1)
    result = linear_probe(x_train, y_train, x_val, y_val, num_classes=4, epochs=10, lrs=[1e-5, 0.01, 0.5, 5.0],
                          batch_size=32)
    search = {r["lr"]: r for r in result.lr_search}
    best = max(r["val_top1"] for r in result.lr_search)
    tied = [r for r in result.lr_search if r["val_top1"] == best]
    assert result.lr == min(tied, key=lambda r: r["val_loss"])["lr"]
    assert search[1e-5]["val_top1"] < best  # too small a rate to leave the initial guess in 10 epochs
    assert result.final == {"top1": search[result.lr]["val_top1"], "top5": search[result.lr]["val_top5"]}
    assert result.history[-1]["top1"] == result.final["top1"] and len(result.history) == 10
    assert set(result.summary()) == {"final", "best_val", "best_epoch", "epochs", "lr", "lr_search", "history"}


def test_separable_features_reach_full_accuracy() -> None:
    x_train, y_train = _separable(120, 16, 4, seed=0)
    x_val, y_val = _separable(40, 16, 4, seed=1)
    seen: list[int] = []
    result = linear_probe(x_train, y_train, x_val, y_val, num_classes=4, epochs=15, lrs=[0.5], batch_size=32,
                          on_epoch=lambda epoch, stats: seen.append(epoch))
    assert result.final["top1"] == 1.0
    assert result.best_val["top1"] == 1.0
    assert 1 <= result.best_epoch <= 15
    assert seen == list(range(1, 16))
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert (result.head(x_val).argmax(1) == y_val).all()


def test_best_is_the_maximum_over_epochs_and_final_the_last() -> None:
    x_train, y_train = _separable(60, 8, 3, seed=2)
    x_val = torch.randn(30, 8, generator=torch.Generator().manual_seed(3))
    y_val = torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(4))
    result = linear_probe(x_train, y_train, x_val, y_val, num_classes=3, epochs=6, lrs=[1.0], batch_size=16)
    top1 = [h["top1"] for h in result.history]
    assert result.best_val["top1"] == max(top1)
    assert result.best_epoch == top1.index(max(top1)) + 1
    assert result.final["top1"] == top1[-1]


def test_probe_is_deterministic_by_seed_and_follows_cosine_schedule() -> None:
    x, y = _separable(40, 8, 2, seed=5)
    a = linear_probe(x, y, x, y, num_classes=2, epochs=4, lrs=[0.1, 0.4], batch_size=8, seed=3)
    b = linear_probe(x, y, x, y, num_classes=2, epochs=4, lrs=[0.1, 0.4], batch_size=8, seed=3)
    assert torch.equal(a.head.weight, b.head.weight) and a.lr_search == b.lr_search
    base = a.lr * 8 / 256
    assert [h["lr"] for h in a.history] == pytest.approx([cosine_lr(base, e, 4) for e in range(4)])
    assert cosine_lr(1.0, 0, 10) == 1.0 and cosine_lr(1.0, 5, 10) == pytest.approx(0.5)
    assert cosine_lr(1.0, 9, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))


def test_a_diverged_head_scores_nothing_and_is_never_chosen() -> None:
    from services.evaluate.linear_heads import _leader, _scores

    x, y = _separable(20, 4, 2, seed=6)
    heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))
    with torch.no_grad():
        heads[0].weight.fill_(float("nan"))
        heads[2].weight.fill_(float("inf"))
    stats, scores = _scores(heads, x, y)
    assert scores.shape == (20, 3, 2)
    assert stats[0] == stats[2] == {"top1": 0.0, "top5": 0.0, "val_loss": None}  # None: JSON holds no NaN
    assert stats[1]["val_loss"] is not None and _leader(stats) == 1
    tie = [{"top1": 0.5, "val_loss": 0.9}, {"top1": 0.5, "val_loss": 0.7}, {"top1": 0.4, "val_loss": 0.1}]
    assert _leader(tie) == 1


def test_default_grid_is_dinov2s_continued_to_10() -> None:
    assert DINOV2_LRS == (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1)
    assert LINEAR_LRS[:13] == DINOV2_LRS and LINEAR_LRS[13:] == (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def test_probe_stops_and_validates() -> None:
    x, y = _separable(10, 4, 2, seed=6)
    with pytest.raises(JobStopped):
        linear_probe(x, y, x, y, num_classes=2, epochs=3, should_stop=lambda: True)
    with pytest.raises(ValueError, match="epochs"):
        linear_probe(x, y, x, y, num_classes=2, epochs=0)
    with pytest.raises(ValueError, match="learning rates"):
        linear_probe(x, y, x, y, num_classes=2, lrs=[])


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
