"""Weighted k-NN classification on frozen features, the protocol of DINO's `eval_knn.py`.

Features are L2-normalized, similarity is the dot product (cosine), the k nearest training
samples vote for their class with weight exp(sim / T), T = 0.07 (Wu et al. 2018; Caron et al.
2021, facebookresearch/dino `knn_classifier`). Test features are processed in chunks so memory
stays bounded by `chunk_size x n_train`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_scores(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor, *,
               k: int, num_classes: int, temperature: float = 0.07, chunk_size: int = 1024) -> torch.Tensor:
    """Per-class vote scores (n_test, num_classes) of the weighted k-NN classifier.

    `k` larger than the training set is clamped to its size, so tiny sets work.
    """
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError("train_features and train_labels differ in length")
    k = min(k, train_features.shape[0])
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    labels = train_labels.long().to(train.device)
    out = torch.empty(test.shape[0], num_classes, dtype=train.dtype, device=train.device)
    for start in range(0, test.shape[0], chunk_size):
        chunk = test[start:start + chunk_size]
        sim, idx = (chunk @ train.T).topk(k, dim=1, largest=True, sorted=True)
        weights = (sim / temperature).exp()
        votes = torch.zeros(chunk.shape[0], num_classes, dtype=train.dtype, device=train.device)
        votes.scatter_add_(1, labels[idx], weights)
        out[start:start + chunk.shape[0]] = votes
    return out


def chunk_size_for(n_train: int, budget_bytes: int = 256 * 2**20) -> int:
    """Test rows per chunk so one similarity block stays within `budget_bytes` of float32."""
    return max(1, budget_bytes // (4 * max(n_train, 1)))
