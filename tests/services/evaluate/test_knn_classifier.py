"""`knn_scores` against DINO's `knn_classifier` (facebookresearch/dino eval_knn.py), re-written here
from its formula: L2-normalized features, cosine similarity, top-k neighbours, one-hot votes
weighted by exp(sim / T), summed per class."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from services.evaluate.knn_classifier import chunk_size_for, knn_scores


def dino_knn_probs(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, k: int, t: float,
                   num_classes: int) -> torch.Tensor:
    train = F.normalize(train.double(), dim=1, p=2)
    test = F.normalize(test.double(), dim=1, p=2)
    similarity = test @ train.T
    distances, indices = similarity.topk(k, largest=True, sorted=True)
    neighbours = torch.gather(labels.view(1, -1).expand(test.shape[0], -1), 1, indices)
    one_hot = torch.zeros(test.shape[0] * k, num_classes, dtype=torch.float64)
    one_hot.scatter_(1, neighbours.reshape(-1, 1), 1)
    weights = (distances / t).exp()
    return (one_hot.view(test.shape[0], k, num_classes) * weights.view(test.shape[0], k, 1)).sum(1)


def _data(n_train: int, n_test: int, dim: int, classes: int, seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n_train, dim, generator=g), torch.randint(0, classes, (n_train,), generator=g),
            torch.randn(n_test, dim, generator=g))


@pytest.mark.parametrize("n_train, n_test, dim, classes, k, t", [
    (50, 20, 8, 3, 5, 0.07), (200, 37, 16, 10, 20, 0.07), (31, 9, 4, 2, 1, 0.5), (120, 64, 32, 5, 100, 0.1),
])
def test_scores_equal_dino_formula(n_train: int, n_test: int, dim: int, classes: int, k: int, t: float) -> None:
    train, labels, test = _data(n_train, n_test, dim, classes, seed=n_train)
    ours = knn_scores(train, labels, test, k=k, num_classes=classes, temperature=t)
    reference = dino_knn_probs(train, labels, test, k, t, classes)
    assert ours.shape == (n_test, classes)
    torch.testing.assert_close(ours.double(), reference, rtol=1e-4, atol=1e-6)
    assert torch.equal(ours.argmax(1), reference.argmax(1))


def test_k_larger_than_training_set_is_clamped() -> None:
    train, labels, test = _data(7, 5, 6, 3, seed=3)
    ours = knn_scores(train, labels, test, k=200, num_classes=3)
    torch.testing.assert_close(ours.double(), dino_knn_probs(train, labels, test, 7, 0.07, 3), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 3, 16, 1000])
def test_chunking_gives_identical_predictions(chunk: int) -> None:
    """Same neighbours and votes; BLAS may round a 1-row product differently in the last
    bit, which exp(sim / T) amplifies to ~1e-6 relative."""
    train, labels, test = _data(60, 25, 8, 4, seed=5)
    whole = knn_scores(train, labels, test, k=10, num_classes=4, chunk_size=10_000)
    chunked = knn_scores(train, labels, test, k=10, num_classes=4, chunk_size=chunk)
    assert torch.equal(chunked.argmax(1), whole.argmax(1))
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=0.0)


def test_feature_scale_does_not_matter_and_self_match_wins() -> None:
    train, labels, _ = _data(40, 1, 8, 4, seed=6)
    scores = knn_scores(train, labels, 3.0 * train, k=1, num_classes=4)
    assert torch.equal(scores.argmax(1), labels)


def test_chunk_size_for_respects_budget() -> None:
    assert chunk_size_for(1000, budget_bytes=4 * 1000 * 50) == 50
    assert chunk_size_for(10**9, budget_bytes=1024) == 1


def test_mismatched_train_labels_raise() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        knn_scores(torch.randn(5, 3), torch.zeros(4, dtype=torch.long), torch.randn(2, 3), k=2, num_classes=2)
