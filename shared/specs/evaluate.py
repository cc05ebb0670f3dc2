"""Spec of `evaluate` jobs: one model, one dataset, several protocols."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from shared.specs.common import BackboneSpec, ModelSource, SpecModel
from shared.specs.datasets import DatasetSpec


class KnnSpec(SpecModel):
    """DINO's weighted k-NN protocol (eval_knn.py): cosine similarity, votes weighted exp(sim/T)."""

    k: list[int] = Field(default_factory=lambda: [10, 20, 100, 200], min_length=1)
    temperature: float = Field(default=0.07, gt=0, le=10)

    @field_validator("k")
    @classmethod
    def _positive(cls, ks: list[int]) -> list[int]:
        if any(k < 1 or k > 10_000 for k in ks):
            raise ValueError("every k must be between 1 and 10000")
        return sorted(set(ks))


class EvaluateSpec(SpecModel):
    backbone: BackboneSpec
    source: ModelSource = Field(default_factory=ModelSource)
    dataset: DatasetSpec
    train_split: str = "train"
    test_split: str = "test"
    protocols: list[Literal["knn"]] = Field(default_factory=lambda: ["knn"], min_length=1)
    knn: KnnSpec = Field(default_factory=KnnSpec)
    batch_size: int = Field(default=64, ge=1, le=4096)
    num_workers: int = Field(default=0, ge=0, le=64)
    seed: int = Field(default=0, ge=0)
