"""CIFAR-10/100 pickles and CIFAR-10-C arrays written by the tests in the real on-disk formats."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from services.data.builders import DatasetError, build_dataset
from services.data.cifar import CIFAR10_CLASSES
from shared.specs.dataset import Cifar10CDataset, CifarDataset

CIFAR100_NAMES = [f"class_{i:02d}" for i in range(100)]


def _images(first_label: int, n: int) -> tuple[np.ndarray, list[int]]:
    """Images whose pixel (r, c) in channel ch is (label * 20 + ch * 5 + r + c) % 256, channel-major rows."""
    labels = [(first_label + i) % 10 for i in range(n)]
    ch, r, c = np.indices((3, 32, 32))
    data = np.stack([((label * 20 + 5 * ch + r + c) % 256).reshape(-1) for label in labels])
    return data.astype(np.uint8), labels


def _dump(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(payload, handle)


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    for b in range(1, 6):
        data, labels = _images(2 * b, 2)
        _dump(folder / f"data_batch_{b}", {"data": data, "labels": labels})
    data, labels = _images(7, 3)
    _dump(folder / "test_batch", {"data": data, "labels": labels})
    _dump(folder / "batches.meta", {"label_names": CIFAR10_CLASSES})
    return tmp_path


def test_cifar10_pickles(cifar10_root: Path) -> None:
    spec = CifarDataset(kind="cifar10", path="cifar10")
    train = build_dataset(spec, "train", data_root=cifar10_root)
    test = build_dataset(spec, "test", data_root=cifar10_root)
    assert len(train) == 10 and len(test) == 3 and train.classes == CIFAR10_CLASSES
    assert train.targets == [2, 3, 4, 5, 6, 7, 8, 9, 0, 1] and test.targets == [7, 8, 9]
    image, target = test[1]
    pixels = np.asarray(image)
    assert image.mode == "RGB" and image.size == (32, 32) and target == 8
    assert pixels[3, 5].tolist() == [160 + 8, 160 + 5 + 8, 160 + 10 + 8]


def test_path_may_name_the_batches_folder_itself(cifar10_root: Path) -> None:
    spec = CifarDataset(kind="cifar10", path="cifar10/cifar-10-batches-py", image_size=16, max_per_split=5)
    train = build_dataset(spec, "train", data_root=cifar10_root)
    assert len(train) == 5 and train[0][0].size == (16, 16)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "c100" / "cifar-100-python"
    data, _ = _images(0, 4)
    _dump(folder / "train", {"data": data, "fine_labels": [99, 0, 42, 42], "coarse_labels": [1, 2, 3, 3]})
    _dump(folder / "test", {"data": data[:1], "fine_labels": [5], "coarse_labels": [0]})
    _dump(folder / "meta", {"fine_label_names": CIFAR100_NAMES, "coarse_label_names": ["x"] * 20})
    train = build_dataset(CifarDataset(kind="cifar100", path="c100"), "train", data_root=tmp_path)
    assert train.classes == CIFAR100_NAMES and train.targets == [99, 0, 42, 42]


def test_cifar_errors_name_the_file_or_split(cifar10_root: Path) -> None:
    spec = CifarDataset(kind="cifar10", path="cifar10")
    with pytest.raises(DatasetError, match="splits 'train' and 'test', not 'val'"):
        build_dataset(spec, "val", data_root=cifar10_root)
    (cifar10_root / "cifar10" / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="missing CIFAR file .*data_batch_3"):
        build_dataset(spec, "train", data_root=cifar10_root)
    (cifar10_root / "cifar10" / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="cannot read CIFAR file .*test_batch"):
        build_dataset(spec, "test", data_root=cifar10_root)


@pytest.fixture
def cifar10c_root(tmp_path: Path) -> Path:
    """4 rows per severity (20 rows); every pixel of row i is i; label of row i is i % 10."""
    folder = tmp_path / "c10c"
    folder.mkdir()
    rows = np.arange(20, dtype=np.uint8)
    np.save(folder / "labels.npy", (rows % 10).astype(np.int64))
    for offset, name in ((0, "fog"), (100, "snow")):
        np.save(folder / f"{name}.npy", np.broadcast_to((rows + offset)[:, None, None, None], (20, 4, 4, 3)).copy())
    return tmp_path


def test_cifar10c_severity_blocks(cifar10c_root: Path) -> None:
    spec = Cifar10CDataset(kind="cifar10c", path="c10c", corruptions=["snow", "fog"], severities=[4, 2])
    dataset = build_dataset(spec, "test", data_root=cifar10c_root)
    assert len(dataset) == 16 and dataset.classes == CIFAR10_CLASSES
    first_pixels = [int(np.asarray(dataset[i][0])[0, 0, 0]) for i in range(len(dataset))]
    assert first_pixels == [104, 105, 106, 107, 112, 113, 114, 115, 4, 5, 6, 7, 12, 13, 14, 15]
    assert dataset.targets == [4, 5, 6, 7, 2, 3, 4, 5] * 2
    assert dataset.groups[:5] == [("snow", 2)] * 4 + [("snow", 4)] and dataset.groups[-1] == ("fog", 4)


def test_cifar10c_subset_covers_every_group(cifar10c_root: Path) -> None:
    spec = Cifar10CDataset(kind="cifar10c", path="c10c", corruptions=["fog", "snow"], severities=[1, 5],
                           max_per_split=8)
    dataset = build_dataset(spec, "test", data_root=cifar10c_root)
    assert Counter(dataset.groups) == {("fog", 1): 2, ("fog", 5): 2, ("snow", 1): 2, ("snow", 5): 2}


def test_cifar10c_errors(cifar10c_root: Path) -> None:
    spec = Cifar10CDataset(kind="cifar10c", path="c10c", corruptions=["fog", "frost"])
    with pytest.raises(DatasetError, match="missing CIFAR-10-C file .*frost.npy"):
        build_dataset(spec, "test", data_root=cifar10c_root)
    with pytest.raises(DatasetError, match="only the split 'test'"):
        build_dataset(spec, "train", data_root=cifar10c_root)
    np.save(cifar10c_root / "c10c" / "frost.npy", np.zeros((15, 4, 4, 3), dtype=np.uint8))
    with pytest.raises(DatasetError, match="frost.npy has 15 rows"):
        build_dataset(spec, "test", data_root=cifar10c_root)


def test_cifar10c_spec() -> None:
    spec = Cifar10CDataset(kind="cifar10c", path="c10c", corruptions=["fog"], severities=[3, 1])
    assert spec.severities == [1, 3]
    assert spec.data_paths() == ["c10c/fog.npy", "c10c/labels.npy"]
    assert len(Cifar10CDataset(kind="cifar10c", path="c").corruptions) == 15
    with pytest.raises(ValueError, match="unknown CIFAR-10-C corruption 'fogg'"):
        Cifar10CDataset(kind="cifar10c", path="c", corruptions=["fogg"])
    with pytest.raises(ValueError, match="severities must be distinct integers 1..5"):
        Cifar10CDataset(kind="cifar10c", path="c", severities=[6])
