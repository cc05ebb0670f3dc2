import io

import pytest
import torch
from landscape_models import tiny_convnet
from torch import nn

from services.landscape.directions import (
    direction_targets,
    directions_to_bytes,
    filter_normalize_,
    interpolation_direction,
    load_directions,
    random_directions,
    save_directions,
)


def _slice_norms(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


@pytest.mark.parametrize("dir_type", ["weights", "states"])
def test_every_filter_slice_has_the_norm_of_the_weight_slice(model, dir_type):
    (direction,) = random_directions(model, count=1, seed=0, dir_type=dir_type)
    targets = direction_targets(model, dir_type)
    multi_dim = [name for name, d in direction.items() if d.dim() > 1]
    assert multi_dim == ["0.weight", "3.weight", "8.weight"]
    for name in multi_dim:
        torch.testing.assert_close(_slice_norms(direction[name]), _slice_norms(targets[name]), rtol=1e-5, atol=1e-6)


def test_filter_normalize_matches_the_formula_per_slice():
    weight = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    direction = torch.tensor([[1.0, 0.0], [2.0, 2.0]])
    filter_normalize_(direction, weight)
    expected = torch.tensor([[5.0, 0.0], [2 / 8 ** 0.5, 2 / 8 ** 0.5]])
    torch.testing.assert_close(direction, expected)


@pytest.mark.parametrize("dir_type", ["weights", "states"])
def test_biasbn_ignored_tensors_are_zero(model, dir_type):
    (direction,) = random_directions(model, count=1, seed=0, dir_type=dir_type, ignore="biasbn")
    one_dim = [name for name, d in direction.items() if d.dim() <= 1]
    assert "1.weight" in one_dim and "0.bias" in one_dim
    assert all(torch.count_nonzero(direction[name]) == 0 for name in one_dim)


def test_included_biasbn_tensors_follow_the_reference_rule(model):
    (direction,) = random_directions(model, count=1, seed=0, dir_type="states", ignore=None)
    targets = direction_targets(model, "states")
    for name in ("0.bias", "1.weight", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(direction[name], targets[name])


def test_states_span_bn_running_stats_but_not_integer_counters(model):
    weights = random_directions(model, count=1, seed=0, dir_type="weights")[0]
    states = random_directions(model, count=1, seed=0, dir_type="states")[0]
    assert "1.running_mean" in states and "1.running_var" in states
    assert "1.running_mean" not in weights
    assert not any(name.endswith("num_batches_tracked") for name in states)
    assert set(weights) < set(states)


def test_same_seed_same_directions_other_seed_other_directions(model):
    first = random_directions(model, count=2, seed=7)
    again = random_directions(tiny_convnet(0), count=2, seed=7)
    other = random_directions(model, count=2, seed=8)
    for a, b in zip(first, again):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(first[0]["0.weight"], other[0]["0.weight"])
    assert not torch.equal(first[0]["0.weight"], first[1]["0.weight"])


def test_interpolation_direction_is_the_difference_of_the_states():
    model_a, model_b = tiny_convnet(0), tiny_convnet(1)
    direction = interpolation_direction(model_a, model_b, dir_type="states")
    sa, sb = model_a.state_dict(), model_b.state_dict()
    for name, d in direction.items():
        torch.testing.assert_close(sa[name] + d, sb[name])
    assert "1.running_var" in direction


def test_interpolation_between_different_architectures_names_the_tensor():
    wider = nn.Sequential(nn.Conv2d(3, 7, 3))
    narrow = nn.Sequential(nn.Conv2d(3, 6, 3))
    with pytest.raises(ValueError, match="0.weight"):
        interpolation_direction(narrow, wider, dir_type="weights")


def test_directions_round_trip_through_torch_save(model, tmp_path):
    directions = random_directions(model, count=2, seed=3)
    save_directions(directions, tmp_path / "directions.pt")
    for loaded in (load_directions(tmp_path / "directions.pt"), load_directions(directions_to_bytes(directions))):
        assert len(loaded) == 2
        assert all(torch.equal(loaded[k][n], directions[k][n]) for k in range(2) for n in directions[k])


def test_load_directions_rejects_other_content():
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buffer)
    with pytest.raises(ValueError, match="list of one or two"):
        load_directions(buffer.getvalue())
