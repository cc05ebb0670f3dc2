"""Small weights files in the forms the team keeps on the NAS, written by the tests themselves.

A tiny ViT (ViT-Tiny at 32 px with 8 px patches) stands in for DINO's ViT-S/16 and the timm
hub models; the files follow the real layouts: facebookresearch/dino's full checkpoint
(`main_dino.py`'s `save_dict`), a timm `.pth`, a `.safetensors` file and a Hugging Face hub
cache folder as `huggingface_hub` leaves it (blobs, snapshots linking to them, refs/main).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import timm
import torch

VIT = "vit_tiny_patch16_224"
VIT_KWARGS = {"img_size": 32, "patch_size": 8}
HF_REVISION = "0123456789abcdef0123456789abcdef01234567"


def tiny_vit(seed: int, **kwargs: object) -> torch.nn.Module:
    """The tiny ViT with weights drawn from `seed` (so two seeds give two different networks)."""
    torch.manual_seed(seed)
    return timm.create_model(VIT, num_classes=0, **{**VIT_KWARGS, **kwargs})


def dino_head_state(prefix: str, dim: int = 192) -> dict[str, torch.Tensor]:
    """A DINOHead's keys (3-layer MLP, weight-normed last layer) under `prefix`."""
    return {f"{prefix}mlp.0.weight": torch.randn(64, dim), f"{prefix}mlp.0.bias": torch.zeros(64),
            f"{prefix}mlp.2.weight": torch.randn(16, 64), f"{prefix}mlp.2.bias": torch.zeros(16),
            f"{prefix}last_layer.weight_g": torch.ones(32, 1), f"{prefix}last_layer.weight_v": torch.randn(32, 16)}


def write_dino_checkpoint(path: Path, teacher: torch.nn.Module, student: torch.nn.Module) -> Path:
    """An official DINO full checkpoint: the student under DDP (`module.backbone.`), the teacher
    (`backbone.`), each with its projection head, and the run's optimizer, loss centre and args."""
    save = {"student": {**{f"module.backbone.{k}": v for k, v in student.state_dict().items()},
                        **dino_head_state("module.head.")},
            "teacher": {**{f"backbone.{k}": v for k, v in teacher.state_dict().items()}, **dino_head_state("head.")},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.0005, "params": [0, 1]}]},
            "epoch": 100, "dino_loss": {"center": torch.zeros(1, 32)},
            "args": argparse.Namespace(arch="vit_tiny", patch_size=8, out_dim=32, global_crops_scale=(0.4, 1.0))}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(save, path)
    return path


def write_timm_pth(path: Path, seed: int = 3) -> dict[str, torch.Tensor]:
    """A timm `.pth` as timm publishes them: the whole model with its classifier; returns its state."""
    torch.manual_seed(seed)
    state = timm.create_model(VIT, num_classes=10, **VIT_KWARGS).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def write_hf_cache(cache: Path, state: dict[str, torch.Tensor], *, tag: str = "augreg_in21k",
                   filename: str = "model.safetensors", model_args: dict | None = None,
                   architecture: str = VIT) -> Path:
    """A hub cache holding `timm/<VIT>.<tag>`: blobs named by digest, a snapshot of links, refs/main.

    Returns the repository folder (`models--timm--<VIT>.<tag>`).
    """
    from safetensors.torch import save_file

    repo = cache / f"models--timm--{VIT}.{tag}"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / HF_REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HF_REVISION)
    staged = repo / "staged"
    if filename.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(staged))
    else:
        torch.save(state, staged)
    config = {"architecture": architecture, "num_classes": 10, "num_features": 192,
              "model_args": model_args if model_args is not None else dict(VIT_KWARGS),
              "pretrained_cfg": {"tag": tag, "input_size": [3, 32, 32], "first_conv": "patch_embed.proj"}}
    for name, data in ((filename, staged.read_bytes()), ("config.json", json.dumps(config).encode())):
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    staged.unlink()
    return repo
