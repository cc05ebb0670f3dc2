import pytest
import torch

from services.pretrain.heads import DINOHead, ProjectionHead
from services.pretrain.optim import param_groups

torch.set_num_threads(1)


@pytest.mark.parametrize("use_bn,nlayers", [(False, 3), (True, 3), (False, 1), (True, 4)])
def test_dino_head_shapes(use_bn, nlayers):
    head = DINOHead(12, 50, use_bn=use_bn, nlayers=nlayers, hidden_dim=32, bottleneck_dim=8)
    out = head(torch.randn(5, 12))
    assert out.shape == (5, 50)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in head.modules()) == (use_bn and nlayers > 1)


def test_dino_head_defaults_follow_the_reference():
    head = DINOHead(16, 10)
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 2048), (2048, 2048), (2048, 256)]
    assert any(isinstance(m, torch.nn.GELU) for m in head.mlp)
    assert head.weight_v.shape == (10, 256)


def test_norm_last_layer_freezes_unit_row_norms():
    torch.manual_seed(0)
    head = DINOHead(6, 9, norm_last_layer=True, hidden_dim=16, bottleneck_dim=4)
    assert torch.all(head.weight_g == 1) and not head.weight_g.requires_grad
    trainable = {id(p) for g in param_groups(head) for p in g["params"]}
    assert id(head.weight_g) not in trainable
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    head(torch.randn(4, 6)).pow(2).sum().backward()
    opt.step()
    rows = head.last_layer.weight.norm(dim=1)
    torch.testing.assert_close(rows, torch.ones(9))


def test_without_norm_last_layer_row_norms_learn():
    torch.manual_seed(0)
    head = DINOHead(6, 9, norm_last_layer=False, hidden_dim=16, bottleneck_dim=4)
    assert torch.all(head.weight_g == 1) and head.weight_g.requires_grad
    opt = torch.optim.SGD(head.parameters(), lr=1.0)
    head(torch.randn(4, 6)).pow(2).sum().backward()
    opt.step()
    assert not torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(9))


def test_dino_head_output_is_a_cosine_to_each_prototype():
    head = DINOHead(6, 7, hidden_dim=16, bottleneck_dim=4)
    x = torch.randn(3, 6)
    bottleneck = torch.nn.functional.normalize(head.mlp(x), dim=-1)
    prototypes = torch.nn.functional.normalize(head.weight_v, dim=-1)
    torch.testing.assert_close(head(x), bottleneck @ prototypes.T)


def test_dino_head_state_dict_roundtrip():
    a, b = DINOHead(6, 7, hidden_dim=16, bottleneck_dim=4), DINOHead(6, 7, hidden_dim=16, bottleneck_dim=4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 6)
    torch.testing.assert_close(a(x), b(x))


@pytest.mark.parametrize("num_layers,use_bn", [(1, False), (2, True), (3, False)])
def test_projection_head_shapes(num_layers, use_bn):
    head = ProjectionHead(12, hidden_dim=20, out_dim=5, num_layers=num_layers, use_bn=use_bn)
    assert head(torch.randn(4, 12)).shape == (4, 5)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == num_layers
    with pytest.raises(ValueError, match="num_layers"):
        ProjectionHead(12, num_layers=0)
