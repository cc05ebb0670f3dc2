"""Deterministic stratified subsets, for `max_per_split`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np

SUBSET_SEED = 0
"""Fixed seed of `max_per_split`: the same spec always reads the same samples, whatever the job's seed."""


def apportion(sizes: Sequence[int], limit: int, *, seed: int = SUBSET_SEED) -> list[int]:
    """Split `limit` slots over groups of `sizes` in proportion (largest-remainder method).

    Each group gets floor(limit * share); leftover slots go to the largest remainders, ties broken
    by a seeded draw so no group is favoured for coming first.
    """
    total = sum(sizes)
    if limit >= total:
        return list(sizes)
    exact = np.array([limit * size / total for size in sizes], dtype=np.float64)
    quota = np.floor(exact).astype(int)
    tie_break = np.random.default_rng(seed).permutation(len(sizes))
    order = np.lexsort((tie_break, -(exact - quota)))
    for slot in order[: limit - int(quota.sum())]:
        quota[slot] += 1
    return [int(q) for q in quota]


def stratified_subset(keys: Sequence[Hashable], limit: int, *, seed: int = SUBSET_SEED) -> list[int]:
    """Sorted indices of at most `limit` samples keeping the proportions of `keys` (usually class labels).

    Quotas per key come from `apportion`; within a key the samples are a seeded random draw.
    Arrays and tensors of labels are read as Python numbers.
    """
    keys = keys.tolist() if hasattr(keys, "tolist") else keys
    if limit >= len(keys):
        return list(range(len(keys)))
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    members = list(groups.values())  # in order of first appearance: stable for a given dataset
    quotas = apportion([len(m) for m in members], limit, seed=seed)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for indices, quota in zip(members, quotas):
        chosen.extend(int(i) for i in rng.permutation(np.asarray(indices))[:quota])
    return sorted(chosen)


def nested_subset(outer: Sequence[Hashable], inner: Sequence[Hashable], limit: int, *,
                  seed: int = SUBSET_SEED) -> list[int]:
    """Like `stratified_subset` over `outer` groups first, then over `inner` keys within each group.

    Keeps every outer group (e.g. a corruption and severity) at its share even when `limit` is
    smaller than the number of (outer, inner) pairs.
    """
    if limit >= len(outer):
        return list(range(len(outer)))
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, key in enumerate(outer):
        groups[key].append(index)
    members = list(groups.values())
    chosen: list[int] = []
    for indices, quota in zip(members, apportion([len(m) for m in members], limit, seed=seed)):
        picked = stratified_subset([inner[i] for i in indices], quota, seed=seed)
        chosen.extend(indices[p] for p in picked)
    return sorted(chosen)
