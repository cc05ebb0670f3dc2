from __future__ import annotations

import numpy as np
import pytest
import torch

from services.evaluate.tsne_embedding import tsne_embedding, tsne_png

from .conftest import png_size


def _clusters() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 10)
    return rng.normal(size=(30, 6)) * 0.1 + np.eye(3, 6)[labels] * 5, labels


def test_embedding_is_seeded_and_keeps_clusters_apart() -> None:
    features, labels = _clusters()
    coords = tsne_embedding(torch.from_numpy(features), perplexity=5, max_iter=250, seed=1)
    assert coords.shape == (30, 2)
    assert np.array_equal(coords, tsne_embedding(features, perplexity=5, max_iter=250, seed=1))
    centres = np.stack([coords[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(coords[labels == c] - centres[c], axis=1).max() for c in range(3))
    gaps = [np.linalg.norm(centres[i] - centres[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) > spread


def test_perplexity_is_lowered_for_tiny_sets() -> None:
    features, _ = _clusters()
    assert tsne_embedding(features[:6], perplexity=30, max_iter=250).shape == (6, 2)
    with pytest.raises(ValueError, match="at least 3"):
        tsne_embedding(features[:2])


def test_png_and_bad_inputs() -> None:
    coords = np.random.default_rng(1).normal(size=(12, 2))
    labels = np.arange(12) % 3
    assert png_size(tsne_png(coords, labels, ["sea", "ship", "buoy"]))[0] > 100
    with pytest.raises(ValueError, match="class name"):
        tsne_png(coords, labels, ["sea", "ship"])
    with pytest.raises(ValueError, match="coordinates"):
        tsne_png(coords[:, :1], labels, ["a", "b", "c"])
