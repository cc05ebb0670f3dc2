"""Encodings of the evaluate job's non-image artifacts: NumPy archives and torch state files."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch


def npz_bytes(**arrays: Any) -> bytes:
    """A compressed `.npz` of the arrays (tensors converted), readable with `np.load` without torch."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()})
    return buf.getvalue()


def torch_bytes(state: dict[str, Any]) -> bytes:
    """`torch.save` of `state`, as the bytes of a `.pt` file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()
