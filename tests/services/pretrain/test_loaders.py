import random

import numpy as np
import torch

from services.pretrain.loaders import LoaderSettings, SeededAugmentation, epoch_order, train_loader
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
    for (a, ya), (b, yb) in zip(full[1:], rest):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert torch.equal(ya, yb)
