"""The synthetic maritime generator: layout, determinism, splits, thermal physics, learnability."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.data.synthetic import CLASSES, make_synthetic, render_scene, square_crop
from services.data.thermal import raw_to_celsius


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synthetic") / "set"
    return root, make_synthetic(root, n_images=36, image_size=64, seed=3)


def test_layout_and_annotations_agree(small_set: tuple[Path, dict]) -> None:
    root, summary = small_set
    meta = json.loads((root / "annotations.json").read_text())
    assert meta["classes"] == list(CLASSES) and len(meta["images"]) == 36
    crops = 0
    for record in meta["images"]:
        rgb = Image.open(root / record["rgb"])
        thermal = Image.open(root / record["thermal"])
        assert rgb.mode == "RGB" and rgb.size == (64, 64)
        assert thermal.mode == "I;16" and thermal.size == (64, 64)
        assert 1 <= len(record["boxes"]) == len(record["labels"]) <= 3
        assert record["split"] in ("train", "val", "test")
        for k, ((x, y, w, h), label) in enumerate(zip(record["boxes"], record["labels"], strict=True)):
            assert label in CLASSES and w > 0 and h > 0
            assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
            for modality in ("rgb", "thermal"):
                crop = Image.open(root / "crops" / modality / record["split"] / label / f"{record['id']}_{k}.png")
                assert crop.size[0] == crop.size[1] >= max(w, h)
            crops += 1
    assert crops == sum(n for split in summary["crops"].values() for n in split.values())


def test_same_seed_same_bytes_other_seed_other_scenes(tmp_path: Path) -> None:
    make_synthetic(tmp_path / "a", n_images=6, image_size=48, seed=5)
    make_synthetic(tmp_path / "b", n_images=6, image_size=48, seed=5)
    make_synthetic(tmp_path / "c", n_images=6, image_size=48, seed=6)
    assert (tmp_path / "a" / "annotations.json").read_bytes() == (tmp_path / "b" / "annotations.json").read_bytes()
    for name in ("images/rgb/000004.png", "images/thermal/000004.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()


def test_scene_depends_only_on_seed_and_index() -> None:
    rgb_a, raw_a, objects_a = render_scene(1, 7, "kayak", 48)
    rgb_b, raw_b, objects_b = render_scene(1, 7, "kayak", 48)
    assert np.array_equal(rgb_a, rgb_b) and np.array_equal(raw_a, raw_b)
    assert objects_a[0].label == "kayak" and [o.box for o in objects_a] == [o.box for o in objects_b]


def test_splits_are_stratified_by_primary_class(small_set: tuple[Path, dict]) -> None:
    root, _ = small_set
    meta = json.loads((root / "annotations.json").read_text())
    by_split = Counter((r["split"], r["labels"][0]) for r in meta["images"])
    for label in CLASSES:  # 6 scenes per primary class: 1 val, 1 test, 4 train
        assert (by_split["train", label], by_split["val", label], by_split["test", label]) == (4, 1, 1)


def test_objects_are_warmer_than_the_sea() -> None:
    for index in range(6):
        _, raw, objects = render_scene(0, index, CLASSES[index], 96)
        celsius = raw_to_celsius(raw)
        sea = np.median(celsius[-8:])  # bottom rows are sea below any horizon
        assert 10.0 < sea < 18.0
        for obj in objects:
            x0, y0, x1, y1 = (int(v) for v in obj.box)
            assert celsius[y0:y1 + 1, x0:x1 + 1].max() > sea + 5.0, obj.label


def test_square_crop_pads_at_the_border() -> None:
    image = np.arange(100, dtype=np.uint16).reshape(10, 10)
    crop = square_crop(image, (0.0, 0.0, 4.0, 2.0), margin=1.0)
    assert crop.shape == (6, 6)
    assert crop[0, 0] == image[0, 0]  # edge-replicated, not zero


def test_refuses_to_overwrite_unless_asked(small_set: tuple[Path, dict], tmp_path: Path) -> None:
    make_synthetic(tmp_path / "s", n_images=6, image_size=32)
    with pytest.raises(FileExistsError, match="already exists"):
        make_synthetic(tmp_path / "s", n_images=6, image_size=32)
    summary = make_synthetic(tmp_path / "s", n_images=12, image_size=32, overwrite=True)
    assert summary["n_images"] == 12 and len(list((tmp_path / "s" / "images" / "rgb").iterdir())) == 12


@pytest.mark.parametrize("modality", ["rgb", "thermal"])
def test_classes_are_learnable_from_pixels(data_root: Path, modality: str) -> None:
    """1-NN on 12x12 pixels of the crops beats chance (1/6) by far more than 2x."""
    from services.data.builders import build_dataset
    from shared.specs.dataset import SyntheticMaritimeDataset
    from tests.services.data.helpers import one_nn_accuracy

    spec = SyntheticMaritimeDataset(kind="synthetic-maritime", modality=modality)
    train = build_dataset(spec, "train", data_root=data_root)
    test = build_dataset(spec, "test", data_root=data_root)
    assert one_nn_accuracy(train, test) > 2 * (1 / len(CLASSES))


EASY_FINGERPRINT = "93bea753e723fb4bb9bff28f87f5c3cfe59e7f9730b4adab24e46b53e136bae2"
"""sha256 over the names and bytes of every file of make_synthetic(n_images=6, image_size=48, seed=5) as the
generator wrote it before it had a difficulty: "easy" must keep writing exactly these files."""


def fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_easy_writes_the_original_set_byte_for_byte(tmp_path: Path) -> None:
    summary = make_synthetic(tmp_path / "easy", n_images=6, image_size=48, seed=5, difficulty="easy")
    assert fingerprint(tmp_path / "easy") == EASY_FINGERPRINT and summary["difficulty"] == 0.0
    make_synthetic(tmp_path / "zero", n_images=6, image_size=48, seed=5, difficulty=0.0)
    assert fingerprint(tmp_path / "zero") == EASY_FINGERPRINT


def test_hard_differs_from_easy_and_is_deterministic_per_seed(tmp_path: Path) -> None:
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        make_synthetic(tmp_path / name, n_images=6, image_size=48, seed=seed, difficulty="hard")
    assert fingerprint(tmp_path / "a") == fingerprint(tmp_path / "b")
    assert fingerprint(tmp_path / "a") not in (fingerprint(tmp_path / "c"), EASY_FINGERPRINT)
    meta = json.loads((tmp_path / "a" / "annotations.json").read_text())
    assert meta["difficulty"] == 1.0
    easy_rgb, _, easy_objects = render_scene(5, 2, "ship", 48)
    hard_rgb, _, hard_objects = render_scene(5, 2, "ship", 48, "hard")
    assert hard_objects[0].label == "ship" and not np.array_equal(easy_rgb, hard_rgb)


@pytest.mark.parametrize("difficulty", ["medium", 1.5, -0.1])
def test_unknown_difficulty_is_refused(tmp_path: Path, difficulty: str | float) -> None:
    with pytest.raises(ValueError, match="difficulty"):
        make_synthetic(tmp_path / "s", n_images=6, image_size=32, difficulty=difficulty)


def test_hard_crops_defeat_raw_pixels(tmp_path: Path) -> None:
    """1-NN on 12x12 pixels: far above chance on the easy set, near it on the hard one (same scenes' classes)."""
    from services.data.builders import build_dataset
    from shared.specs.dataset import SyntheticMaritimeDataset
    from tests.services.data.helpers import one_nn_accuracy

    spec = SyntheticMaritimeDataset(kind="synthetic-maritime", path="set")
    scores = {}
    for difficulty in ("easy", "hard"):
        make_synthetic(tmp_path / difficulty / "set", n_images=180, image_size=48, seed=1, difficulty=difficulty)
        train = build_dataset(spec, "train", data_root=tmp_path / difficulty)
        test = build_dataset(spec, "test", data_root=tmp_path / difficulty)
        scores[difficulty] = one_nn_accuracy(train, test)
    assert scores["easy"] > 0.6 and scores["hard"] < scores["easy"] - 0.25, scores
