"""Assembling tile results into a surface, and its npz form.

Arrays follow `np.meshgrid(x, y)`: loss[j, i] is the point x[i], y[j] (shape (ny, nx)); a 1D
surface has y empty and loss of shape (nx,). Points no tile has reported yet are NaN, so a
partial surface can be stored and plotted while tiles are still running.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.landscape.grid import Grid


@dataclass
class Surface:
    """Loss and accuracy over a grid; NaN where a point is missing (or has no accuracy)."""

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray

    @property
    def is_2d(self) -> bool:
        return self.y.size > 0

    @property
    def missing(self) -> int:
        """Grid points without a loss."""
        return int(np.isnan(self.loss).sum())

    def to_npz(self) -> bytes:
        """npz bytes with arrays x, y, loss, accuracy."""
        buffer = io.BytesIO()
        np.savez(buffer, x=self.x, y=self.y, loss=self.loss, accuracy=self.accuracy)
        return buffer.getvalue()

    @classmethod
    def from_npz(cls, source: bytes | str | Path) -> Surface:
        with np.load(io.BytesIO(source) if isinstance(source, bytes) else source) as data:
            return cls(x=data["x"], y=data["y"], loss=data["loss"], accuracy=data["accuracy"])


def assemble_surface(grid: Grid, results: Iterable[Mapping[str, Any]]) -> Surface:
    """Place tile results (dicts with i, j, loss, acc) on the grid; later duplicates overwrite earlier ones."""
    loss = np.full(grid.shape, np.nan)
    accuracy = np.full(grid.shape, np.nan)
    for row in results:
        i, j = int(row["i"]), int(row["j"])
        if not 0 <= i < grid.x.num or not 0 <= j < (grid.y.num if grid.y is not None else 1):
            raise ValueError(f"point (i={i}, j={j}) lies outside the {grid.shape} grid")
        index = (j, i) if grid.is_2d else (i,)
        loss[index] = row["loss"]
        accuracy[index] = np.nan if row.get("acc") is None else row["acc"]
    y = np.asarray(grid.y.values()) if grid.y is not None else np.zeros(0)
    return Surface(x=np.asarray(grid.x.values()), y=y, loss=loss, accuracy=accuracy)
