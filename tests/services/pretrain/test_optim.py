import pytest
import torch
import torch.nn as nn

from services.pretrain.heads import DINOHead
from services.pretrain.optim import SAM, build_optimizer, cancel_gradients_last_layer, clip_gradients, param_groups

torch.set_num_threads(1)


def small_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def test_param_groups_exclude_biases_and_1d_from_weight_decay():
    model = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2, bias=False))
    model[2].weight.requires_grad = False
    regularized, plain = param_groups(model)
    assert [p.shape for p in regularized["params"]] == [torch.Size([3, 4])]
    assert {tuple(p.shape) for p in plain["params"]} == {(3,)} and len(plain["params"]) == 3
    assert plain["weight_decay"] == 0.0 and "weight_decay" not in regularized


@pytest.mark.parametrize("name", ["adamw", "sgd", "lars"])
def test_build_optimizer_steps(name):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = build_optimizer(name, param_groups(model))
    for group in opt.param_groups:
        group["lr"] = 0.1
    opt.param_groups[0]["weight_decay"] = 0.01
    before = model.weight.detach().clone()
    model(torch.randn(8, 4)).pow(2).sum().backward()
    opt.step()
    assert not torch.equal(before, model.weight)
    assert opt.param_groups[1]["weight_decay"] == 0.0


def test_lars_adapts_only_the_regularized_group():
    opt = build_optimizer("lars", param_groups(nn.Linear(4, 2)))
    assert [g["always_adapt"] for g in opt.param_groups] == [True, False]
    assert opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("adam", param_groups(nn.Linear(4, 2)))


def test_clip_gradients_clips_each_parameter_on_its_own():
    model = nn.Linear(3, 2)
    model.weight.grad = torch.full((2, 3), 2.0)
    model.bias.grad = torch.tensor([0.3, 0.4])
    norms = clip_gradients(model, 1.0)
    torch.testing.assert_close(norms, torch.tensor([24 ** 0.5, 0.5]))
    assert float(model.weight.grad.norm()) == pytest.approx(1.0 * 24 ** 0.5 / (24 ** 0.5 + 1e-6))
    torch.testing.assert_close(model.bias.grad, torch.tensor([0.3, 0.4]))


def test_cancel_gradients_last_layer_only_during_freeze():
    head = DINOHead(4, 5, norm_last_layer=False, hidden_dim=8, bottleneck_dim=3)
    head(torch.randn(2, 4)).sum().backward()
    cancel_gradients_last_layer(1, head, freeze_last_layer=1)
    assert head.weight_v.grad is not None
    cancel_gradients_last_layer(0, head, freeze_last_layer=1)
    assert head.weight_v.grad is None and head.weight_g.grad is None
    assert head.mlp[0].weight.grad is not None


def test_sam_descends_with_the_gradient_at_the_perturbed_point():
    a = torch.tensor([1.0, 4.0, 0.5])
    w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    sam = SAM(torch.optim.SGD([w], lr=0.1), rho=0.05)
    w0 = w.detach().clone()
    g = a * w0
    w_adv = w0 + 0.05 * g / g.norm()

    def closure():
        loss = 0.5 * (a * w * w).sum()
        loss.backward()
        return loss

    closure()
    sam.step(closure)
    torch.testing.assert_close(w.detach(), w0 - 0.1 * a * w_adv)


def test_sam_adaptive_and_state_dict():
    model = small_model()
    model(torch.randn(2, 3, 6, 6))
    sam = SAM(build_optimizer("sgd", param_groups(model)), rho=0.1, adaptive=True)
    for group in sam.param_groups:
        group["lr"] = 0.01
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(4, 3, 6, 6)
    model(x).pow(2).mean().backward()
    sam.first_step()
    model(x).pow(2).mean().backward()
    sam.second_step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    assert "momentum_buffer" in next(iter(sam.state_dict()["state"].values()))
    with pytest.raises(ValueError, match="rho"):
        SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.0)
