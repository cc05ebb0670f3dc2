"""FiftyOne detection crops against a real mongod holding the synthetic maritime set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.data import fiftyone_crops
from services.data.builders import build_dataset
from services.data.fiftyone_crops import crop_window, split_frames
from services.data.images import DatasetError
from shared.specs.dataset import FiftyOneDataset


def spec(**fields) -> FiftyOneDataset:
    return FiftyOneDataset(kind="fiftyone", **{"dataset_name": "synthetic", **fields})


def frame_ids(dataset) -> set[str]:
    return {Path(p).name.split("_")[0] for p in dataset.paths}


def annotations(data_root: Path) -> dict:
    return json.loads((data_root / "synthetic-maritime" / "annotations.json").read_text())


def add_dataset(name: str, data_root: Path, frames: list[list[tuple[str, list[float]]]]) -> None:
    """A FiftyOne dataset of 32 px grey-noise frames with the given (label, relative box) detections."""
    from services.data.fiftyone_client import load_fiftyone

    fo = load_fiftyone()
    folder = data_root / ".fiftyone-frames" / name
    folder.mkdir(parents=True, exist_ok=True)
    dataset = fo.Dataset(name, overwrite=True)
    samples = []
    for i, boxes in enumerate(frames):
        path = folder / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        samples.append(fo.Sample(filepath=str(path), ground_truth=fo.Detections(
            detections=[fo.Detection(label=label, bounding_box=box) for label, box in boxes]),
            note=fo.Classification(label="x")))
    dataset.add_samples(samples, progress=False)


def test_synthetic_set_is_registered_with_relative_boxes(synthetic_fiftyone: str, data_root: Path) -> None:
    from services.data.fiftyone_client import load_fiftyone

    fo = load_fiftyone()
    meta = annotations(data_root)
    rgb, thermal = fo.load_dataset("synthetic"), fo.load_dataset("synthetic-thermal")
    assert len(rgb) == len(thermal) == len(meta["images"])
    first = rgb.first()
    record = next(r for r in meta["images"] if first.filepath.endswith(r["rgb"]))
    size = meta["image_size"]
    assert [d.label for d in first.ground_truth.detections] == record["labels"]
    np.testing.assert_allclose(first.ground_truth.detections[0].bounding_box, np.asarray(record["boxes"][0]) / size)
    assert first.tags == [record["split"]]
    assert thermal.first().filepath.endswith(record["thermal"])


def test_splits_hold_every_class_on_disjoint_frames(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    parts = {s: build_dataset(spec(), s, data_root=data_root, cache_dir=tmp_path) for s in ("train", "val", "test")}
    classes = sorted({label for r in annotations(data_root)["images"] for label in r["labels"]})
    for dataset in parts.values():
        assert dataset.classes == classes
        assert set(dataset.targets) == set(range(len(classes)))
    assert not frame_ids(parts["train"]) & frame_ids(parts["val"])
    assert not frame_ids(parts["train"]) & frame_ids(parts["test"])
    assert not frame_ids(parts["val"]) & frame_ids(parts["test"])
    detections = sum(len(r["labels"]) for r in annotations(data_root)["images"])
    assert sum(len(d) for d in parts.values()) == detections
    assert len(parts["train"]) > len(parts["val"]) and len(parts["train"]) > len(parts["test"])
    image, target = parts["val"][0]
    assert image.mode == "RGB" and image.size[0] == image.size[1]


def test_split_is_fixed_by_its_seed(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    first = build_dataset(spec(split_seed=3), "val", data_root=data_root, cache_dir=tmp_path / "a")
    again = build_dataset(spec(split_seed=3), "val", data_root=data_root, cache_dir=tmp_path / "b")
    other = build_dataset(spec(split_seed=4), "val", data_root=data_root, cache_dir=tmp_path / "a")
    assert frame_ids(first) == frame_ids(again)
    assert frame_ids(first) != frame_ids(other)


def test_cached_crops_need_neither_mongodb_nor_frames(synthetic_fiftyone: str, data_root: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    built = build_dataset(spec(image_size=16), "train", data_root=data_root, cache_dir=tmp_path)

    def refuse(*_args, **_kwargs):
        raise AssertionError("touched MongoDB or decoded a frame")

    monkeypatch.setattr(fiftyone_crops, "read_frames", refuse)
    monkeypatch.setattr(fiftyone_crops, "frame_pixels", refuse)
    again = build_dataset(spec(image_size=16), "test", data_root=data_root, cache_dir=tmp_path)
    assert len(again) > 0
    monkeypatch.setattr(fiftyone_crops, "open_dataset", refuse)
    for _epoch in range(2):
        for i in range(len(built)):
            image, _ = built[i]
            assert image.size == (16, 16)


def test_remap_allow_list_largest_and_min_size(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    remap = {"motorboat": "boat", "sailing_boat": "boat", "kayak": "boat"}
    chosen = spec(remap=remap, classes=["ship", "boat", "buoy"], crops="largest", min_crop_size=6)
    parts = [build_dataset(chosen, s, data_root=data_root, cache_dir=tmp_path) for s in ("train", "val", "test")]
    assert all(d.classes == ["ship", "boat", "buoy"] for d in parts)
    expected = 0
    for record in annotations(data_root)["images"]:
        expected += any(remap.get(label, label) in chosen.classes and max(w, h) >= 6
                        for label, (_x, _y, w, h) in zip(record["labels"], record["boxes"], strict=True))
    assert sum(len(d) for d in parts) == expected
    for dataset in parts:
        assert len(frame_ids(dataset)) == len(dataset)  # one crop per frame


def test_thermal_crops_keep_16_bit(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    chosen = spec(dataset_name="synthetic-thermal", modality="thermal", window_c=(0.0, 60.0))
    dataset = build_dataset(chosen, "train", data_root=data_root, cache_dir=tmp_path)
    with Image.open(dataset.paths[0]) as crop:
        assert np.asarray(crop).dtype == np.uint16
    image, _ = dataset[0]
    values = np.asarray(image)
    assert image.mode == "F" and 0.0 <= values.min() <= values.max() <= 1.0
    assert dataset.channels == 3


def test_errors_name_dataset_field_and_classes(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="'no-such-set' does not exist"):
        build_dataset(spec(dataset_name="no-such-set"), "train", data_root=data_root, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="no label field 'detections'"):
        build_dataset(spec(label_field="detections"), "train", data_root=data_root, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match=r"classes \['unicorn'\] have no crops"):
        build_dataset(spec(classes=["ship", "unicorn"]), "train", data_root=data_root, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="no detections"):
        build_dataset(spec(min_crop_size=500), "train", data_root=data_root, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="splits"):
        build_dataset(spec(), "holdout", data_root=data_root, cache_dir=tmp_path)


def test_split_without_a_class_is_refused(synthetic_fiftyone: str, data_root: Path, tmp_path: Path) -> None:
    box = [0.2, 0.2, 0.5, 0.5]
    add_dataset("rare", data_root, [[("boat", box)]] * 8 + [[("dolphin", box)]])
    with pytest.raises(DatasetError, match=r"lacking: .*'dolphin'"):
        build_dataset(spec(dataset_name="rare"), "train", data_root=data_root, cache_dir=tmp_path)
    with pytest.raises(DatasetError, match="does not hold Detections"):
        build_dataset(spec(dataset_name="rare", label_field="note"), "train", data_root=data_root, cache_dir=tmp_path)
    merged = build_dataset(spec(dataset_name="rare", remap={"dolphin": "boat"}), "val", data_root=data_root,
                           cache_dir=tmp_path)
    assert merged.classes == ["boat"] and len(merged) >= 1


def test_missing_database_uri_is_a_dataset_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from services.data.fiftyone_client import load_fiftyone

    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    with pytest.raises(DatasetError, match="FIFTYONE_DATABASE_URI"):
        load_fiftyone()


def test_crop_window_pads_with_edges() -> None:
    pixels = np.arange(10 * 10, dtype=np.uint8).reshape(10, 10)
    inside = crop_window(pixels, (0.0, 2.0, 4.0, 4.0), square=True, margin=1.0)
    np.testing.assert_array_equal(inside, pixels[1:5, 0:4])  # the 4x2 box centred in a 4x4 window
    corner = crop_window(pixels, (8.0, 8.0, 10.0, 10.0), square=True, margin=2.0)
    np.testing.assert_array_equal(corner[:3, :3], pixels[7:10, 7:10])
    np.testing.assert_array_equal(corner[3, :3], pixels[9, 7:10])  # bottom edge repeated beyond the frame
    wide = crop_window(pixels, (6.0, 0.0, 10.0, 2.0), square=False, margin=1.5)
    assert wide.shape == (3, 6)
    assert (wide[:, -1] == wide[:, -2]).all()  # right edge repeated beyond the frame


def test_split_frames_stratifies_and_keeps_train() -> None:
    primary = {i: ("a" if i < 20 else "b") for i in range(24)}
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    split = split_frames(primary, fractions, seed=0)
    for label, size in (("a", 20), ("b", 4)):
        got = [split[i] for i in primary if primary[i] == label]
        assert got.count("val") == max(1, round(0.15 * size)) and got.count("test") == max(1, round(0.15 * size))
    assert split == split_frames(primary, fractions, seed=0)
    assert split != split_frames(primary, fractions, seed=1)
    assert set(split_frames({0: "a", 1: "a"}, fractions, seed=0).values()) == {"train"}
    no_test = split_frames(primary, {"train": 0.8, "val": 0.2, "test": 0.0}, seed=0)
    assert "test" not in no_test.values()


def test_stats_command_feeds_dataset_normalization(synthetic_fiftyone: str, data_root: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    from services.data.__main__ import main
    from services.data.stats import compute_stats, normalization

    main(["stats", "synthetic", "--fiftyone", "--data-root", str(data_root), "--cache-dir", str(tmp_path)])
    written = json.loads(capsys.readouterr().out)
    assert Path(written["file"]) == data_root / ".fiftyone-stats" / "synthetic" / "stats.json"
    chosen = spec(normalize="dataset")
    mean, std = normalization(chosen, data_root, channels=3)
    direct = compute_stats(build_dataset(spec(), "train", data_root=data_root, cache_dir=tmp_path))
    np.testing.assert_allclose(mean, direct[0], atol=1e-9)
    np.testing.assert_allclose(std, direct[1], atol=1e-9)
    assert normalization(spec(), data_root, channels=1) == ((pytest.approx(0.449, abs=1e-3),),
                                                            (pytest.approx(0.226, abs=1e-3),))
    with pytest.raises(DatasetError, match="bosun data stats"):
        normalization(spec(normalize="dataset", crops="largest"), data_root, channels=3)


def test_make_synthetic_with_fiftyone(fiftyone_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from services.data.__main__ import main

    main(["make-synthetic", str(tmp_path / "tiny"), "--n-images", "12", "--image-size", "32", "--fiftyone", "tiny"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["fiftyone"] == {"tiny": 12, "tiny-thermal": 12}
    with pytest.raises(DatasetError, match="already exists"):
        from services.data.fiftyone_synthetic import write_fiftyone

        write_fiftyone(tmp_path / "tiny", "tiny")


def test_catalog_entries_through_the_public_api(synthetic_fiftyone: str, data_root: Path) -> None:
    """`python -m services.data catalog`'s entries: split tags, detections per label, the Detections fields."""
    from collections import Counter

    from services.data.fiftyone_catalog import describe_datasets
    from services.data.fiftyone_client import load_fiftyone

    fo = load_fiftyone()
    unlabelled = fo.Dataset("unlabelled", overwrite=True)
    unlabelled.add_samples([fo.Sample(filepath=str(data_root / f"{i}.png"), note=fo.Classification(label="x"))
                            for i in range(3)], progress=False)
    entries = {entry["name"]: entry for entry in describe_datasets()["data"]}
    meta = annotations(data_root)
    rgb = entries["synthetic"]
    assert rgb["kind"] == "fiftyone"
    assert rgb["splits"] == dict(Counter(r["split"] for r in meta["images"]))
    assert rgb["classes"] == dict(Counter(label for r in meta["images"] for label in r["labels"]))
    assert list(rgb["classes"]) == sorted(rgb["classes"])
    assert rgb["details"] == {"samples": len(meta["images"]), "label_field": "ground_truth",
                              "label_fields": ["ground_truth"], "media_type": "image"}
    assert entries["synthetic-thermal"]["classes"] == rgb["classes"]
    assert entries["unlabelled"]["splits"] == {"all": 3} and entries["unlabelled"]["classes"] == {}
    assert entries["unlabelled"]["details"]["label_field"] is None
    fo.delete_dataset("unlabelled")
