"""build_dataset for the synthetic and folder kinds, max_per_split, errors, and compute_stats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from services.data.builders import DatasetError, build_dataset
from services.data.stats import compute_stats
from services.data.subset import apportion, stratified_subset
from services.data.synthetic import CLASSES
from services.data.transforms import eval_transform
from shared.specs.dataset import FolderDataset, SyntheticMaritimeDataset
from tests.services.data.helpers import solid_rgb, write_png

torch.set_num_threads(1)


def synthetic(**fields) -> SyntheticMaritimeDataset:
    return SyntheticMaritimeDataset(kind="synthetic-maritime", **fields)


def test_synthetic_rgb_crops(data_root: Path) -> None:
    train = build_dataset(synthetic(image_size=24), "train", data_root=data_root)
    assert train.classes == list(CLASSES) and train.channels == 3
    image, target = train[0]
    assert image.mode == "RGB" and image.size == (24, 24) and target == train.targets[0]
    for path, target in zip(train.paths, train.targets, strict=True):
        assert path.parent.name == CLASSES[target] and path.parent.parent.name == "train"
    assert set(train.targets) == set(range(len(CLASSES)))


def test_synthetic_thermal_crops_are_windowed(data_root: Path) -> None:
    replicate = build_dataset(synthetic(modality="thermal"), "val", data_root=data_root)
    single = build_dataset(synthetic(modality="thermal", channels="single"), "val", data_root=data_root)
    image, _ = replicate[0]
    pixels = np.asarray(image)
    assert image.mode == "F" and 0.0 <= pixels.min() and pixels.max() <= 1.0
    assert (replicate.channels, single.channels) == (3, 1)


def test_transform_is_applied(data_root: Path) -> None:
    dataset = build_dataset(synthetic(), "test", data_root=data_root, transform=eval_transform(16))
    image, _ = dataset[0]
    assert isinstance(image, torch.Tensor) and image.shape == (3, 16, 16)


def test_max_per_split_is_stratified_and_fixed(data_root: Path) -> None:
    full = build_dataset(synthetic(), "train", data_root=data_root)
    spec = synthetic(max_per_split=30)
    first = build_dataset(spec, "train", data_root=data_root)
    second = build_dataset(spec, "train", data_root=data_root)
    assert len(first) == 30 and first.paths == second.paths
    share_full = Counter(full.targets)
    for label, count in Counter(first.targets).items():
        assert abs(count - 30 * share_full[label] / len(full)) < 1.0


def test_stratified_subset_apportions_by_largest_remainder() -> None:
    keys = [0] * 50 + [1] * 30 + [2] * 20
    chosen = stratified_subset(keys, 11)
    assert Counter(keys[i] for i in chosen) == {0: 6, 1: 3, 2: 2}  # 5.5, 3.3, 2.2: the spare slot goes to 0.5
    assert chosen == sorted(chosen) and len(set(chosen)) == 11
    assert stratified_subset(keys, 11) == chosen and stratified_subset(keys, 11, seed=1) != chosen
    assert stratified_subset(keys, 500) == list(range(100))
    assert stratified_subset(torch.tensor(keys), 11) == chosen


def test_apportion_breaks_ties_without_favouring_the_first_groups() -> None:
    quotas = apportion([1] * 10, 5)
    assert sum(quotas) == 5 and quotas != [1] * 5 + [0] * 5
    assert apportion([3, 1], 10) == [3, 1]


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """train has cats, dogs and owls; val lacks owls."""
    tree = tmp_path / "pets"
    for split, classes in (("train", ("cat", "dog", "owl")), ("val", ("cat", "dog"))):
        for c, name in enumerate(classes):
            for k in range(2):
                write_png(tree / split / name / f"{k}.png", solid_rgb((40 * c, 100, 20 * k), size=10))
    (tree / "train" / "cat" / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_classes_agree_across_splits(folder_root: Path) -> None:
    spec = FolderDataset(kind="folder", path="pets", image_size=12)
    train = build_dataset(spec, "train", data_root=folder_root)
    val = build_dataset(spec, "val", data_root=folder_root)
    assert train.classes == val.classes == ["cat", "dog", "owl"]
    assert train.targets == [0, 0, 1, 1, 2, 2] and val.targets == [0, 0, 1, 1]
    image, target = val[2]
    assert image.size == (12, 12) and target == 1
    assert np.asarray(image)[5, 5].tolist() == [40, 100, 0]


def test_missing_folder_and_split(folder_root: Path) -> None:
    with pytest.raises(DatasetError, match="missing dataset path .*nowhere"):
        build_dataset(FolderDataset(kind="folder", path="nowhere"), "train", data_root=folder_root)
    with pytest.raises(DatasetError, match=r"missing split folder .*pets/test"):
        build_dataset(FolderDataset(kind="folder", path="pets"), "test", data_root=folder_root)


def test_path_escaping_the_root_via_symlink(tmp_path: Path, folder_root: Path) -> None:
    root = tmp_path / "nas"
    root.mkdir()
    (root / "link").symlink_to(folder_root / "pets")
    with pytest.raises(DatasetError, match="leaves the data root"):
        build_dataset(FolderDataset(kind="folder", path="link"), "train", data_root=root)


def test_spec_refuses_dotdot_paths() -> None:
    with pytest.raises(ValueError, match="without '..'"):
        FolderDataset(kind="folder", path="../etc")


def test_empty_split(folder_root: Path) -> None:
    (folder_root / "pets" / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"pets/test holds no images"):
        build_dataset(FolderDataset(kind="folder", path="pets"), "test", data_root=folder_root)


def test_corrupt_image_names_its_path(folder_root: Path) -> None:
    (folder_root / "pets" / "val" / "dog" / "1.png").write_bytes(b"\x89PNG broken")
    dataset = build_dataset(FolderDataset(kind="folder", path="pets"), "val", data_root=folder_root)
    dataset[0]
    with pytest.raises(DatasetError, match=r"cannot read image .*val/dog/1\.png"):
        dataset[3]


def test_compute_stats_of_known_colours(tmp_path: Path) -> None:
    write_png(tmp_path / "c" / "train" / "a" / "red.png", solid_rgb((255, 0, 0), size=4))
    write_png(tmp_path / "c" / "train" / "b" / "blue.png", solid_rgb((0, 0, 255), size=8))
    dataset = build_dataset(FolderDataset(kind="folder", path="c", image_size=16), "train", data_root=tmp_path)
    mean, std = compute_stats(dataset)
    # 16 red pixels and 64 blue pixels (native sizes): red share 0.2.
    assert mean == pytest.approx((0.2, 0.0, 0.8))
    assert std == pytest.approx((0.4, 0.0, 0.4))


def test_compute_stats_of_thermal_crops_per_network_channel(data_root: Path) -> None:
    replicate = build_dataset(synthetic(modality="thermal"), "val", data_root=data_root)
    single = build_dataset(synthetic(modality="thermal", channels="single"), "val", data_root=data_root)
    mean3, std3 = compute_stats(replicate)
    mean1, std1 = compute_stats(single, max_samples=1000)
    assert len(mean3) == 3 and len(mean1) == 1
    assert mean3 == pytest.approx(mean1 * 3) and std3 == pytest.approx(std1 * 3)
    assert 0.0 < mean1[0] < 1.0 and std1[0] > 0.0


def test_compute_stats_with_sample_limit_is_deterministic(data_root: Path) -> None:
    dataset = build_dataset(synthetic(), "train", data_root=data_root)
    assert compute_stats(dataset, max_samples=12) == compute_stats(dataset, max_samples=12)
    assert compute_stats(dataset, max_samples=12) != compute_stats(dataset)


def test_unknown_split_name_of_synthetic(data_root: Path) -> None:
    with pytest.raises(DatasetError, match="missing split folder"):
        build_dataset(synthetic(), "validation", data_root=data_root)


def test_synthetic_without_annotations(tmp_path: Path) -> None:
    (tmp_path / "synthetic-maritime").mkdir()
    with pytest.raises(DatasetError, match="annotations.json missing"):
        build_dataset(synthetic(), "train", data_root=tmp_path)


def test_rgb_images_are_decoded_from_grey_files(tmp_path: Path) -> None:
    path = tmp_path / "g" / "train" / "x" / "grey.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.full((5, 5), 77, dtype=np.uint8)).save(path)
    image, _ = build_dataset(FolderDataset(kind="folder", path="g"), "train", data_root=tmp_path)[0]
    assert image.mode == "RGB" and np.asarray(image)[0, 0].tolist() == [77, 77, 77]
