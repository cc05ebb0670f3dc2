"""Per-iteration cosine schedules for learning rate, weight decay and teacher momentum.

One value per training iteration, so a resumed job indexes the same array at the same global
iteration and sees exactly the values an uninterrupted run would. Same definition as
facebookresearch/dino `utils.cosine_scheduler` (Caron et al. 2021): an optional linear warm-up
from `start_warmup_value` to `base_value`, then a half cosine from `base_value` to `final_value`.
"""

from __future__ import annotations

import numpy as np


def cosine_scheduler(base_value: float, final_value: float, epochs: int, niter_per_ep: int,
                     warmup_epochs: int = 0, start_warmup_value: float = 0.0) -> np.ndarray:
    """Schedule of length `epochs * niter_per_ep`: linear warm-up, then cosine decay."""
    if epochs < 1 or niter_per_ep < 1:
        raise ValueError(f"cosine_scheduler needs epochs >= 1 and niter_per_ep >= 1, got {epochs} and {niter_per_ep}")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs must be within [0, epochs={epochs}], got {warmup_epochs}")
    warmup_iters = warmup_epochs * niter_per_ep
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_iters > 0 else np.array([])
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    cosine = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * iters / max(len(iters), 1)))
    return np.concatenate((warmup, cosine))


def teacher_temp_schedule(warmup_teacher_temp: float, teacher_temp: float, warmup_epochs: int,
                          epochs: int) -> np.ndarray:
    """Per-epoch teacher temperature: linear from `warmup_teacher_temp` to `teacher_temp`, then constant.

    A too high temperature early in training makes DINO unstable, hence the warm-up
    (facebookresearch/dino `DINOLoss.teacher_temp_schedule`). Training longer than the
    schedule keeps the final temperature.
    """
    warmup = np.linspace(warmup_teacher_temp, teacher_temp, warmup_epochs)
    rest = np.ones(max(epochs - warmup_epochs, 0)) * teacher_temp
    return np.concatenate((warmup, rest))
