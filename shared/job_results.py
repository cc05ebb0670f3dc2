"""A finished job's headline figures, read from its stored result: what compare, sweeps and
notifications show of it."""

from __future__ import annotations

from shared.db import Job


def headline_metrics(job: Job) -> dict[str, float]:
    """The numeric entries of the job's `result.headline` (empty until it has succeeded)."""
    headline = (job.result or {}).get("headline") or {}
    return {name: float(value) for name, value in headline.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


PRETRAIN_METRICS = ("loss", "knn_top1", "epochs", "iterations", "global_batch_size")
"""A pretraining's final metrics, as its result records them."""


def final_metrics(job: Job) -> dict[str, float]:
    """A pretraining's numeric final metrics (empty until it has succeeded)."""
    result = job.result or {}
    return {name: float(result[name]) for name in PRETRAIN_METRICS
            if isinstance(result.get(name), (int, float)) and not isinstance(result.get(name), bool)}


def headline_of(job: Job) -> dict[str, float]:
    """A pretraining's final metrics, or any other job's headline (empty until it has succeeded)."""
    return final_metrics(job) if job.type == "pretrain" else headline_metrics(job)
