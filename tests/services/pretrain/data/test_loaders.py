import random

import numpy as np
import pytest
import torch

from services.pretrain.data.loaders import (
    LoaderSettings,
    SeededAugmentation,
    epoch_order,
    iterations_per_epoch,
    train_loader,
)
from tests.services.pretrain.helpers import StripesDataset, TwoViews

torch.set_num_threads(1)


def test_augmentation_depends_only_on_seed_epoch_and_index():
    data = SeededAugmentation(StripesDataset(6, TwoViews()), seed=3)
    first = data[4][0][0]
    _ = data[1]
    torch.testing.assert_close(data[4][0][0], first)
    data.set_epoch(1)
    assert not torch.equal(data[4][0][0], first)
    assert not torch.equal(data[4][0][0], data[4][0][1]), "the two views must differ"


def test_loading_leaves_global_generators_untouched():
    data = SeededAugmentation(StripesDataset(4, TwoViews()), seed=0)
    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    expected = (torch.rand(1), random.random(), np.random.rand())
    torch.manual_seed(11), random.seed(11), np.random.seed(11)
    _ = data[2]
    assert (torch.rand(1), random.random(), np.random.rand()) == expected


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    assert sorted(epoch_order(10, 0, 0)) == list(range(10))
    assert epoch_order(10, 0, 0) == epoch_order(10, 0, 0)
    assert epoch_order(10, 0, 0) != epoch_order(10, 0, 1)
    assert epoch_order(10, 0, 0) != epoch_order(10, 1, 0)


def batches(settings, start=0):
    data = SeededAugmentation(StripesDataset(13, TwoViews()), seed=settings.seed)
    return [(views[0], targets) for views, targets in train_loader(data, settings, epoch=2, start_iteration=start)]


def test_resumed_loader_yields_the_remaining_batches_identically_with_workers():
    settings = LoaderSettings(batch_size=4, num_workers=0, seed=5)
    full = batches(settings)
    assert len(full) == 3
    rest = batches(LoaderSettings(batch_size=4, num_workers=2, seed=5), start=1)
    assert len(rest) == 2
    for (a, ya), (b, yb) in zip(full[1:], rest, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert torch.equal(ya, yb)


class Indices(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def index_batches(settings, n=23, start=0):
    return [b.tolist() for b in train_loader(SeededAugmentation(Indices(n), settings.seed), settings, epoch=3,
                                              start_iteration=start)]


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_split_each_global_batch_of_one_process(world):
    single = index_batches(LoaderSettings(batch_size=3 * world, num_workers=0, seed=5))
    ranks = [index_batches(LoaderSettings(batch_size=3, num_workers=0, seed=5, rank=r, world_size=world))
             for r in range(world)]
    assert len(single) == 23 // (3 * world) and all(len(r) == len(single) for r in ranks)
    for i, batch in enumerate(single):
        parts = [r[i] for r in ranks]
        assert all(len(part) == 3 for part in parts)
        assert sorted(sum(parts, [])) == sorted(batch), "ranks together see the one-process batch, once each"
    for r in range(world):
        resumed = index_batches(LoaderSettings(batch_size=3, num_workers=0, seed=5, rank=r, world_size=world), start=1)
        assert resumed == ranks[r][1:]


def test_a_split_smaller_than_the_global_batch_is_refused():
    assert iterations_per_epoch(16, 4, 2) == 2
    with pytest.raises(ValueError, match="fewer than batch_size_per_gpu=4 x 5 ranks"):
        iterations_per_epoch(16, 4, 5)
