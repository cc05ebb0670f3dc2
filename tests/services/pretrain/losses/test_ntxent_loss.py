import pytest
import torch

from services.pretrain.losses.ntxent_loss import nt_xent_loss
from tests.services.pretrain.losses.reference import loop_nt_xent

torch.set_num_threads(1)


@pytest.mark.parametrize("n,d,temperature", [(2, 3, 0.5), (5, 8, 0.1), (7, 4, 1.0)])
def test_nt_xent_equals_explicit_loop(n, d, temperature):
    torch.manual_seed(n)
    z1, z2 = torch.randn(n, d), torch.randn(n, d)
    assert float(nt_xent_loss(z1, z2, temperature)) == pytest.approx(loop_nt_xent(z1, z2, temperature), rel=1e-5)


def test_nt_xent_shape_errors():
    with pytest.raises(ValueError, match="z1 and z2"):
        nt_xent_loss(torch.randn(3, 4), torch.randn(2, 4))


def test_ranks_nt_xent_over_the_gathered_batch_average_to_the_global_loss():
    torch.manual_seed(0)
    world, n = 3, 4
    z1, z2 = torch.randn(world * n, 6), torch.randn(world * n, 6)
    rows = [slice(r * n, (r + 1) * n) for r in range(world)]
    ranks = [nt_xent_loss(z1[s], z2[s], 0.5, batch=(z1, z2), offset=s.start) for s in rows]
    assert float(sum(ranks)) / world == pytest.approx(float(nt_xent_loss(z1, z2, 0.5)), rel=1e-5)
