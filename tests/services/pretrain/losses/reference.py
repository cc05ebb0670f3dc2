"""Reference forms of the contrastive losses, written anchor by anchor in float64 as the papers state them."""

import math

import torch


def loop_nt_xent(z1, z2, temperature):
    """NT-Xent written as Chen et al. 2020's Algorithm 1, anchor by anchor."""
    z = [v / v.norm() for v in torch.cat([z1, z2]).double()]
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[j]) / temperature) / denominator)
    return total / (2 * n)
