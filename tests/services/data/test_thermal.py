"""Thermal PNGs: the raw <-> degC map, windowing to exact values, 8-bit files, channel policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from services.data.builders import DatasetError, build_dataset
from services.data.thermal import celsius_to_raw, raw_to_celsius
from services.data.transforms import eval_transform
from shared.specs.dataset import ThermalDataset
from tests.services.data.helpers import solid_rgb, write_png

torch.set_num_threads(1)

TEMPS_C = np.array([[-30.0, 0.0, 10.0, 20.0], [30.0, 45.5, 50.0, 400.0]])


def thermal(**fields) -> ThermalDataset:
    return ThermalDataset(kind="thermal", path="ir", **fields)


def test_raw_map_endpoints_and_round_trip() -> None:
    assert raw_to_celsius(np.array([0, 65535])).tolist() == [-80.0, 2000.0]
    raw = celsius_to_raw(TEMPS_C)
    assert raw.dtype == np.uint16
    assert np.abs(raw_to_celsius(raw) - TEMPS_C).max() <= 2080 / 65535 / 2 + 1e-9
    assert celsius_to_raw(np.array([-500.0, 5000.0])).tolist() == [0, 65535]


def test_16bit_pixels_become_exact_windowed_values(tmp_path: Path) -> None:
    raw = celsius_to_raw(TEMPS_C)
    write_png(tmp_path / "ir" / "train" / "boat" / "a.png", raw)
    image, target = build_dataset(thermal(), "train", data_root=tmp_path)[0]
    expected = np.clip((-80.0 + raw.astype(np.float64) * 2080.0 / 65535.0 - 10.0) / 40.0, 0.0, 1.0)
    assert image.mode == "F" and target == 0
    np.testing.assert_allclose(np.asarray(image), expected, rtol=0, atol=1e-6)
    assert np.asarray(image)[0, :2].tolist() == [0.0, 0.0] and np.asarray(image)[1, 3] == 1.0  # clipped
    assert np.asarray(image)[1, 0] == pytest.approx(0.5, abs=1e-3)


def test_configurable_map_and_window(tmp_path: Path) -> None:
    raw = np.array([[0, 1000, 2000, 3000]], dtype=np.uint16)  # 0.01 degC per count from 0 degC: 0, 10, 20, 30 degC
    write_png(tmp_path / "ir" / "val" / "buoy" / "b.png", raw)
    spec = thermal(raw_min_c=0.0, raw_max_c=655.35, window_c=(10.0, 30.0))
    image, _ = build_dataset(spec, "val", data_root=tmp_path)[0]
    np.testing.assert_allclose(np.asarray(image), [[0.0, 0.0, 0.5, 1.0]], atol=1e-6)


def test_8bit_pixels_are_intensities(tmp_path: Path) -> None:
    write_png(tmp_path / "ir" / "train" / "kayak" / "c.png", np.array([[0, 51, 255]], dtype=np.uint8))
    image, _ = build_dataset(thermal(), "train", data_root=tmp_path)[0]
    np.testing.assert_allclose(np.asarray(image), [[0.0, 0.2, 1.0]], atol=1e-7)


def test_colour_png_is_refused_with_its_path(tmp_path: Path) -> None:
    write_png(tmp_path / "ir" / "train" / "ship" / "rgb.png", solid_rgb((1, 2, 3)))
    dataset = build_dataset(thermal(), "train", data_root=tmp_path)
    with pytest.raises(DatasetError, match=r"not single-channel .*ship/rgb\.png"):
        dataset[0]


@pytest.mark.parametrize(("policy", "channels"), [("replicate", 3), ("single", 1)])
def test_channel_policy_reaches_the_network_input(tmp_path: Path, policy: str, channels: int) -> None:
    write_png(tmp_path / "ir" / "train" / "boat" / "a.png", celsius_to_raw(np.full((8, 8), 30.0)))
    dataset = build_dataset(thermal(channels=policy), "train", data_root=tmp_path)
    dataset.transform = eval_transform(8, mean=(0.5,), std=(0.25,), channels=dataset.channels)
    tensor, _ = dataset[0]
    assert tensor.shape == (channels, 8, 8)
    torch.testing.assert_close(tensor, torch.zeros_like(tensor), atol=1e-3, rtol=0)  # (0.5 - 0.5) / 0.25


def test_resize_keeps_values_inside_the_window(tmp_path: Path) -> None:
    checker = np.where(np.indices((16, 16)).sum(axis=0) % 2 == 0, 0.0, 60.0)
    write_png(tmp_path / "ir" / "train" / "boat" / "a.png", celsius_to_raw(checker))
    image, _ = build_dataset(thermal(image_size=9), "train", data_root=tmp_path)[0]
    pixels = np.asarray(image)
    assert image.size == (9, 9) and pixels.min() >= 0.0 and pixels.max() <= 1.0


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="low < high"):
        thermal(window_c=(50.0, 10.0))
    with pytest.raises(ValueError, match="raw_max_c must be greater"):
        thermal(raw_min_c=100.0, raw_max_c=0.0)
    with pytest.raises(ValueError, match="channels"):
        thermal(channels="triple")
