from __future__ import annotations

import pytest
import torch
from landscape_models import tiny_convnet
from torch import nn

torch.set_num_threads(1)


@pytest.fixture
def model() -> nn.Module:
    return tiny_convnet(0)


@pytest.fixture
def data() -> tuple[torch.Tensor, torch.Tensor]:
    """12 random 16 px images with labels of 4 classes."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(12, 3, 16, 16, generator=generator)
    labels = torch.randint(0, 4, (12,), generator=generator)
    return images, labels


@pytest.fixture(scope="session")
def dino_pretraining(tmp_path_factory, data_root):
    """A 1-epoch tiny DINO pretraining run in-process: (its context, its spec)."""
    from ssl_checkpoints import pretrain_tiny_dino

    return pretrain_tiny_dino(tmp_path_factory.mktemp("pretrain"), data_root)


@pytest.fixture(autouse=True)
def fresh_tile_process():
    """Each test's tiles start as in a fresh job process: no evaluator kept from another test's job."""
    from services.landscape import landscape_job

    landscape_job._loaded.clear()
    yield
    landscape_job._loaded.clear()
