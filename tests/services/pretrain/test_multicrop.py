import torch
import torch.nn as nn

from services.pretrain.multicrop import MultiCropWrapper, resolution_groups

torch.set_num_threads(1)


class CountingBackbone(nn.Module):
    """Global-average-pooled 1x1 conv, counting its calls and batch sizes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.conv(x).mean(dim=(2, 3))


def test_resolution_groups_are_consecutive_runs():
    crops = [torch.zeros(2, 3, s, s) for s in (16, 16, 8, 8, 8, 16)]
    assert resolution_groups(crops) == [(0, 2), (2, 5), (5, 6)]


def test_backbone_runs_once_per_resolution_and_head_once():
    torch.manual_seed(0)
    backbone, head = CountingBackbone(), nn.Linear(4, 6)
    head_calls = []
    head.register_forward_hook(lambda m, i, o: head_calls.append(i[0].shape[0]))
    wrapper = MultiCropWrapper(backbone, head)
    crops = [torch.randn(2, 3, 16, 16) for _ in range(2)] + [torch.randn(2, 3, 8, 8) for _ in range(3)]

    out = wrapper(crops)

    assert backbone.calls == [4, 6]
    assert head_calls == [10]
    backbone.calls.clear()
    expected = torch.cat([head(backbone(c)) for c in crops])
    torch.testing.assert_close(out, expected)


def test_single_tensor_input():
    wrapper = MultiCropWrapper(CountingBackbone(), nn.Identity())
    assert wrapper(torch.randn(3, 3, 8, 8)).shape == (3, 4)
    assert wrapper.features([torch.randn(3, 3, 8, 8)]).shape == (3, 4)
