"""Deterministic, resumable data loading for pretraining.

A job must be able to stop at any iteration and resume to exactly the weights an uninterrupted
run reaches. Two things make the data side reproducible regardless of worker processes:
the sample order of an epoch is a permutation drawn from (seed, epoch) alone, so resuming at
iteration i just starts at batch i of that order; and each sample's augmentation draws its
random numbers from generators seeded by (seed, epoch, index), so a sample looks the same
whichever worker loads it and whatever was loaded before it.

Under data parallelism every rank draws the same permutation and takes every `world_size`-th
sample of its full global batches (DistributedSampler's interleaving), so batch i of all ranks
together is batch i of one process with the global batch, and resuming skips the same number
of local batches on every rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads (seed, epoch, index) over 63 bits


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch."""
    value = (seed * _MIX + epoch) * _MIX + index
    return (value ^ (value >> 29)) % (2 ** 63)


class SeededAugmentation(Dataset):
    """Wraps a dataset so that item `i` of epoch `e` is drawn with RNGs seeded by (seed, e, i).

    The torch, numpy and Python generators are seeded for the item and restored afterwards, so
    loading in the main process leaves the training's random state untouched.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        seed = sample_seed(self.seed, self.epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                random.seed(seed)
                np.random.seed(seed % (2 ** 32))
                return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled sample order of `epoch`, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(sample_seed(seed, epoch, n))
    return torch.randperm(n, generator=generator).tolist()


@dataclass(frozen=True)
class LoaderSettings:
    """`batch_size` is per rank; `rank` of `world_size` picks this rank's share of each global batch."""

    batch_size: int
    num_workers: int
    seed: int
    pin_memory: bool = False
    rank: int = 0
    world_size: int = 1


def iterations_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Full global batches (`batch_size` per rank) per epoch; the last, incomplete one is dropped
    as in the reference."""
    if n < batch_size * world_size:
        ranks = f" x {world_size} ranks" if world_size > 1 else ""
        raise ValueError(f"the training split has {n} samples, fewer than batch_size_per_gpu={batch_size}{ranks}")
    return n // (batch_size * world_size)


def rank_order(n: int, settings: LoaderSettings, epoch: int) -> list[int]:
    """This rank's samples of `epoch` in order: every `world_size`-th of the full global batches."""
    order = epoch_order(n, settings.seed, epoch)
    end = iterations_per_epoch(n, settings.batch_size, settings.world_size) * settings.batch_size * settings.world_size
    return order[:end][settings.rank::settings.world_size]


def train_loader(dataset: SeededAugmentation, settings: LoaderSettings, epoch: int,
                 start_iteration: int = 0) -> DataLoader:
    """Loader over this rank's full batches of `epoch`, starting at batch `start_iteration`.

    The loader gets its own generator, so creating it draws nothing from the global RNG.
    """
    dataset.set_epoch(epoch)
    order = rank_order(len(dataset), settings, epoch)
    return DataLoader(dataset, batch_size=settings.batch_size, sampler=order[start_iteration * settings.batch_size:],
                      num_workers=settings.num_workers, pin_memory=settings.pin_memory, drop_last=True,
                      generator=torch.Generator().manual_seed(sample_seed(settings.seed, epoch, -1)))


def eval_loader(dataset: Dataset, settings: LoaderSettings) -> DataLoader:
    """Unshuffled loader over every sample, for feature extraction."""
    return DataLoader(dataset, batch_size=settings.batch_size, shuffle=False, num_workers=settings.num_workers,
                      pin_memory=settings.pin_memory, generator=torch.Generator().manual_seed(settings.seed))
