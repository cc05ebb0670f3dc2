"""Tiny in-memory data and specs for the pretraining tests."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from services.job_context import LocalContext
from shared.specs.pretrain import PretrainSpec

FOLDER = {"kind": "folder", "path": "tiny"}
TINY_VIT = {"name": "test_vit", "kwargs": {"patch_size": 4}}
TINY_RESNET = {"name": "test_resnet", "kwargs": {}}


class StripesDataset(Dataset):
    """16 px images of two classes, horizontal or vertical stripes with noise, as (3, H, W) tensors."""

    def __init__(self, n: int, transform=None, seed: int = 0, size: int = 16) -> None:
        g = torch.Generator().manual_seed(seed)
        self.targets = [i % 2 for i in range(n)]
        self.classes = ["horizontal", "vertical"]
        self.channels = 3
        stripes = (torch.arange(size) % 4 < 2).float()
        self.images = []
        for t in self.targets:
            pattern = stripes[:, None].expand(size, size) if t == 0 else stripes[None, :].expand(size, size)
            self.images.append((pattern + 0.3 * torch.rand(3, size, size, generator=g)).clamp(0, 1))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.targets[i]


def augment(size: int, scale=(0.3, 1.0)):
    return v2.Compose([v2.RandomResizedCrop(size, scale=scale, antialias=True), v2.RandomHorizontalFlip()])


class MultiCrop:
    def __init__(self, n_local: int, size: int = 16, local_size: int = 8) -> None:
        self.global_view, self.local_view, self.n_local = augment(size), augment(local_size, (0.1, 0.5)), n_local

    def __call__(self, image):
        local = [self.local_view(image) for _ in range(self.n_local)]
        return [self.global_view(image), self.global_view(image)] + local


class TwoViews:
    def __init__(self, size: int = 16) -> None:
        self.view = augment(size)

    def __call__(self, image):
        return [self.view(image), self.view(image)]


class RecordingContext(LocalContext):
    """LocalContext that also keeps every (metric, step) call, to find duplicates."""

    def __init__(self, root: Path, **kwargs) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        super().__init__(root, **kwargs)
        self.metric_calls: list[tuple[str, int]] = []

    def log_metric(self, name: str, value: float, step: int) -> None:
        self.metric_calls.append((name, step))
        super().log_metric(name, value, step)


def local(root: Path, **kwargs) -> LocalContext:
    """A LocalContext on a fresh folder."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return LocalContext(root, **kwargs)


def spec(method: str, backbone=None, options=None, **fields) -> PretrainSpec:
    defaults = {"epochs": 3, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0, "lr": 2.0}
    if method == "dino":
        defaults.update(out_dim=32, head_hidden_dim=32, head_bottleneck_dim=16, local_crops_number=2,
                        freeze_last_layer=1, drop_path_rate=0.1, momentum_teacher=0.9)
    block = {"dino": "dino", "simclr": "contrastive", "supcon": "contrastive", "supervised": "supervised"}[method]
    raw = {"method": method, "backbone": backbone or (TINY_VIT if method == "dino" else TINY_RESNET),
           "dataset": FOLDER, block: {**defaults, **(options or {})}, "amp": "none", "knn_every": 0,
           "log_every": 1, **fields}
    return PretrainSpec.model_validate(raw)
