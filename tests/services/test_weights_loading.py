"""Weights files and checkpoints load without running code from them (services.job_context.load_torch)."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from services.backbones import load_backbone
from services.job_context import LocalContext, WeightsFileError, load_torch, save_torch
from services.pretrain.rng import capture_rng, restore_rng
from shared.specs.common import BackboneSpec, ModelSource


class Payload:
    """A pickle that, when loaded unsafely, creates `marker` (what an attacker's os.system would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path) -> Path:
    """A file that looks like a torch checkpoint and carries the payload beside real tensors."""
    torch.save({"teacher": {"conv1.weight": torch.zeros(1)}, "note": Payload(marker)}, path)
    return path


def test_malicious_torch_file_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = write_malicious(tmp_path / "evil.pt", marker)
    with pytest.raises(WeightsFileError) as info:
        load_torch(weights, name="weights file 'models/evil.pt'")
    assert str(info.value).startswith("weights file 'models/evil.pt': not a loadable weights file")
    assert "\n" not in str(info.value)
    assert not marker.exists()


def test_plain_pickle_and_garbage_are_refused_naming_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Payload(marker)))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for path in (raw, garbage):
        with pytest.raises(WeightsFileError, match=str(path)):
            load_torch(path)
    assert not marker.exists()


def test_backbone_from_a_malicious_file_fails_with_the_file_named(tmp_path: Path) -> None:
    """The path a job takes: services.backbones.load_backbone on `source: {kind: file}`."""
    ctx = LocalContext(tmp_path / "job", data_root=tmp_path / "data")
    marker = tmp_path / "pwned"
    (tmp_path / "data" / "models").mkdir(parents=True)
    write_malicious(tmp_path / "data" / "models" / "evil.pt", marker)
    with pytest.raises(WeightsFileError, match="models/evil.pt"):
        load_backbone(BackboneSpec(name="resnet18"), ModelSource(kind="file", path="models/evil.pt"), ctx)
    assert not marker.exists()


def test_safetensors_weights_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.ones(2, 3)}, str(tmp_path / "w.safetensors"))
    assert torch.equal(load_torch(tmp_path / "w.safetensors")["fc.weight"], torch.ones(2, 3))


def test_checkpoint_with_rng_state_round_trips_under_weights_only(tmp_path: Path) -> None:
    """bosun's own checkpoints (RNG states, optimizer state) are readable by torch.load(weights_only=True)."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = {"rng": capture_rng(), "optimizer": optimizer.state_dict(), "loss": np.float32(0.5), "epoch": 1}
    expected = (random.random(), np.random.rand(), torch.rand(1))
    save_torch(state, tmp_path / "ckpt.pt")
    torch.load(tmp_path / "ckpt.pt", weights_only=True)  # no unsafe global left in the file
    loaded = load_torch(tmp_path / "ckpt.pt")
    assert loaded["loss"] == 0.5 and isinstance(loaded["loss"], float)
    assert loaded["rng"]["numpy"][1].dtype == np.uint32
    optimizer.load_state_dict(loaded["optimizer"])
    restore_rng(loaded["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(1), expected[2])
