import pytest
import torch
import torch.nn.functional as F
from landscape_models import tiny_convnet

from services.landscape.directions import interpolation_direction, random_directions
from services.landscape.grid import Grid, Tile, evaluate_tile, split_tiles
from services.landscape.perturb import base_state


def _plain_eval(model, images, labels) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(images)
    return F.cross_entropy(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def _by_index(results):
    return {(r["i"], r["j"]): r for r in results}


def _assert_same_results(first, second, tol=1e-5):
    a, b = _by_index(first), _by_index(second)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key]["loss"] == pytest.approx(b[key]["loss"], rel=tol, abs=tol), key
        assert a[key]["acc"] == pytest.approx(b[key]["acc"], abs=1e-6), key


def test_grid_points_are_row_major_with_linspace_steps():
    grid = Grid.from_ranges([-1, 1, 3], [0, 1, 2])
    assert grid.shape == (2, 3)
    assert grid.points() == [(0, 0, -1.0, 0.0), (1, 0, 0.0, 0.0), (2, 0, 1.0, 0.0),
                             (0, 1, -1.0, 1.0), (1, 1, 0.0, 1.0), (2, 1, 1.0, 1.0)]
    assert Grid.from_ranges([0, 2, 3]).points() == [(0, 0, 0.0, 0.0), (1, 0, 1.0, 0.0), (2, 0, 2.0, 0.0)]


def test_tiles_cover_a_51x51_grid_once_and_are_deterministic():
    grid = Grid.from_ranges([-1, 1, 51], [-1, 1, 51])
    tiles = split_tiles(grid, 100)
    assert len(tiles) == 27 and [t.index for t in tiles] == list(range(27))
    assert len(tiles[-1].points) == 51 * 51 - 26 * 100
    covered = [(p[0], p[1]) for t in tiles for p in t.points]
    assert sorted(covered) == sorted((i, j) for i in range(51) for j in range(51))
    assert split_tiles(grid, 100) == tiles
    assert Tile.from_dict(tiles[3].to_dict()) == tiles[3]


@pytest.mark.parametrize("bad", [([1, 1, 5], None), ([-1, 1, 1], None), ([-1, 1, 5], [2, 0, 5])])
def test_degenerate_axes_are_rejected(bad):
    with pytest.raises(ValueError, match="grid axis"):
        Grid.from_ranges(*bad)


def test_results_do_not_depend_on_the_tiling(model, data):
    directions = random_directions(model, count=2, seed=0)
    base = base_state(model, directions)
    grid = Grid.from_ranges([-1, 1, 4], [-1, 1, 3])
    whole = evaluate_tile(model, base, directions, grid.points(), data)
    for tile_size in (1, 5):
        tiled = [r for tile in split_tiles(grid, tile_size)
                 for r in evaluate_tile(model, base, directions, tile.points, data)]
        _assert_same_results(whole, tiled, tol=1e-6)
    assert len({round(r["loss"], 6) for r in whole}) > 6


def test_center_point_equals_plain_evaluation_and_model_is_restored(model, data):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain_loss, plain_acc = _plain_eval(model, *data)
    directions = random_directions(model, count=2, seed=1, dir_type="states", ignore=None)
    points = [(0, 0, 0.5, -0.5), (1, 1, 0.0, 0.0)]
    results = evaluate_tile(model, base_state(model, directions), directions, points, data, batch_size=5)
    assert results[1]["loss"] == pytest.approx(plain_loss, rel=1e-6)
    assert results[1]["acc"] == pytest.approx(plain_acc)
    assert results[0]["loss"] != pytest.approx(plain_loss, rel=1e-3)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


@pytest.mark.parametrize("dir_type", ["weights", "states"])
def test_interpolation_endpoints_equal_the_two_models_losses(data, dir_type):
    model_a, model_b = tiny_convnet(0), tiny_convnet(1)
    if dir_type == "weights":
        model_b.load_state_dict({**model_b.state_dict(),
                                 **{k: v for k, v in model_a.state_dict().items() if "running" in k}})
    direction = [interpolation_direction(model_a, model_b, dir_type=dir_type)]
    points = [(0, 0, 0.0, 0.0), (1, 0, 0.5, 0.0), (2, 0, 1.0, 0.0)]
    results = evaluate_tile(model_a, base_state(model_a, direction), direction, points, data)
    assert results[0]["loss"] == pytest.approx(_plain_eval(model_a, *data)[0], rel=1e-6)
    assert results[2]["loss"] == pytest.approx(_plain_eval(model_b, *data)[0], rel=1e-5)


@pytest.mark.parametrize("dir_type,bn_mode", [("weights", "eval"), ("states", "eval"), ("weights", "recalibrate")])
def test_vmap_path_equals_loop_path(model, data, dir_type, bn_mode):
    directions = random_directions(model, count=2, seed=2, dir_type=dir_type)
    base = base_state(model, directions)
    points = Grid.from_ranges([-1, 1, 3], [-1, 1, 3]).points()
    loop = evaluate_tile(model, base, directions, points, data, bn_mode=bn_mode, batch_size=8)
    stacked = evaluate_tile(model, base, directions, points, data, bn_mode=bn_mode, batch_size=8, points_per_forward=4)
    _assert_same_results(loop, stacked)


def test_recalibration_changes_the_loss_away_from_the_center(model, data):
    directions = random_directions(model, count=1, seed=2)
    base = base_state(model, directions)
    points = [(0, 0, 1.0, 0.0)]
    kept = evaluate_tile(model, base, directions, points, data)[0]["loss"]
    recalibrated = evaluate_tile(model, base, directions, points, data, bn_mode="recalibrate")[0]["loss"]
    assert recalibrated != pytest.approx(kept, rel=1e-3)
    assert torch.equal(model[1].running_mean, tiny_convnet(0)[1].running_mean)


def test_dino_metric_uses_the_loss_fn_and_reports_no_accuracy(model, data):
    images = data[0]

    def self_distillation(net, batch):
        views = batch[0]
        teacher = F.softmax(net(views.flip(-1)) / 0.04, dim=-1)
        return torch.sum(-teacher * F.log_softmax(net(views) / 0.1, dim=-1), dim=-1).mean()

    directions = random_directions(model, count=2, seed=4)
    base = base_state(model, directions)
    points = [(0, 0, 0.0, 0.0), (1, 0, 0.3, 0.2)]
    loop = evaluate_tile(model, base, directions, points, images, metric="dino", loss_fn=self_distillation,
                         batch_size=5)
    stacked = evaluate_tile(model, base, directions, points, images, metric="dino", loss_fn=self_distillation,
                            points_per_forward=2)
    with torch.no_grad():
        assert loop[0]["loss"] == pytest.approx(self_distillation(model, (images,)).item(), rel=1e-5)
    assert loop[0]["acc"] is None and stacked[1]["acc"] is None
    assert stacked[1]["loss"] == pytest.approx(loop[1]["loss"], rel=1e-5)


@pytest.mark.filterwarnings("ignore:There is a performance drop")
def test_timm_vit_vmap_path_equals_loop_path():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=16, patch_size=8, embed_dim=16,
                            depth=1, num_heads=2, num_classes=3).eval()
    images, labels = torch.randn(6, 3, 16, 16), torch.randint(0, 3, (6,))
    directions = random_directions(vit, count=2, seed=0)
    base = base_state(vit, directions)
    points = [(0, 0, 0.0, 0.0), (1, 0, 0.5, -0.5), (2, 0, -1.0, 1.0)]
    loop = evaluate_tile(vit, base, directions, points, (images, labels))
    stacked = evaluate_tile(vit, base, directions, points, (images, labels), points_per_forward=3)
    _assert_same_results(loop, stacked)
    assert loop[0]["loss"] == pytest.approx(_plain_eval(vit, images, labels)[0], rel=1e-6)


def test_bad_arguments_are_named(model, data):
    one = random_directions(model, count=1, seed=0)
    with pytest.raises(ValueError, match="two directions"):
        evaluate_tile(model, base_state(model, one), one, [(0, 0, 0.0, 0.5)], data)
    with pytest.raises(ValueError, match="base_params lacks '0.weight'"):
        evaluate_tile(model, {}, one, [(0, 0, 0.0, 0.0)], data)
    with pytest.raises(ValueError, match="needs a loss_fn"):
        evaluate_tile(model, base_state(model, one), one, [(0, 0, 0.0, 0.0)], data, metric="dino")
    with pytest.raises(ValueError, match="not a parameter or buffer"):
        evaluate_tile(model, {}, [{"nope": torch.zeros(1)}], [(0, 0, 0.0, 0.0)], data)
