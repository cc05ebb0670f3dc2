import math

import pytest
import torch

from services.pretrain.losses.ntxent_loss import nt_xent_loss
from services.pretrain.losses.supcon_loss import supcon_loss
from tests.services.pretrain.losses.reference import loop_nt_xent

torch.set_num_threads(1)


@pytest.mark.parametrize("n,d,temperature", [(3, 5, 0.1), (6, 4, 0.5)])
def test_supcon_with_distinct_labels_is_nt_xent(n, d, temperature):
    torch.manual_seed(n)
    z1, z2 = torch.randn(n, d), torch.randn(n, d)
    features = torch.stack([z1, z2], dim=1)
    expected = loop_nt_xent(z1, z2, temperature)
    assert float(supcon_loss(features, torch.arange(n) * 3, temperature)) == pytest.approx(expected, rel=1e-5)
    assert float(supcon_loss(features, None, temperature)) == pytest.approx(expected, rel=1e-5)
    scaled = supcon_loss(features, torch.arange(n), temperature, base_temperature=0.07)
    assert float(scaled) == pytest.approx(expected * temperature / 0.07, rel=1e-5)


def test_supcon_hand_computed_case():
    features = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    # Every anchor sees similarities (1, 0, 0) to the others; with one class all three are positives.
    same = supcon_loss(features, torch.tensor([0, 0]), temperature=1.0)
    assert float(same) == pytest.approx(math.log(2 + math.e) - 1 / 3, rel=1e-6)
    distinct = supcon_loss(features, torch.tensor([0, 1]), temperature=1.0)
    assert float(distinct) == pytest.approx(math.log(2 + math.e) - 1, rel=1e-6)


def test_supcon_pulls_same_class_views_together():
    torch.manual_seed(0)
    features = torch.randn(6, 2, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    opt = torch.optim.SGD([features], lr=0.5)
    before = supcon_loss(features, labels).item()
    for _ in range(20):
        opt.zero_grad()
        supcon_loss(features, labels).backward()
        opt.step()
    assert supcon_loss(features, labels).item() < before


def test_supcon_shape_errors():
    with pytest.raises(ValueError, match="n_views"):
        supcon_loss(torch.randn(3, 1, 4))
    with pytest.raises(ValueError, match="labels"):
        supcon_loss(torch.randn(3, 2, 4), torch.arange(4))


def test_ranks_supcon_over_the_gathered_batch_average_to_the_global_loss():
    torch.manual_seed(0)
    world, n = 3, 4
    z1, z2 = torch.randn(world * n, 6), torch.randn(world * n, 6)
    features, labels = torch.stack([z1, z2], dim=1), torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1, 1, 2, 2])
    rows = [slice(r * n, (r + 1) * n) for r in range(world)]
    ranks = [supcon_loss(features[s], labels[s], 0.5, 0.07, batch=(features, labels), offset=s.start) for s in rows]
    assert float(sum(ranks)) / world == pytest.approx(float(supcon_loss(features, labels, 0.5, 0.07)), rel=1e-5)
    ranks = [supcon_loss(features[s], None, 0.5, batch=(features, None), offset=s.start) for s in rows]
    assert float(sum(ranks)) / world == pytest.approx(float(nt_xent_loss(z1, z2, 0.5)), rel=1e-5)
