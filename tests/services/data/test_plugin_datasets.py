"""Dataset kinds from `bosun.datasets` plugins (services.data.builders) with the example tests/plugins/squares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from services.data.builders import DatasetError, build_dataset
from shared.specs.dataset import DatasetSpec

SQUARES = Path(__file__).resolve().parents[2] / "plugins" / "squares"
SPEC = TypeAdapter(DatasetSpec)


@pytest.fixture(autouse=True)
def squares_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SQUARES))


def test_the_plugin_builds_each_split_and_max_per_split_applies(tmp_path: Path) -> None:
    spec = SPEC.validate_python({"kind": "plugin", "name": "squares", "params": {"per_class": 6, "size": 16},
                                 "max_per_split": 9})
    train = build_dataset(spec, "train", data_root=tmp_path)
    assert train.classes == ["red", "green", "blue"] and len(train) == 9
    assert sorted(set(train.targets)) == [0, 1, 2]
    image, target = train[0]
    assert image.size == (16, 16) and image.mode == "RGB"
    again = build_dataset(spec, "train", data_root=tmp_path)
    assert list(again[0][0].getdata()) == list(image.getdata())
    assert list(build_dataset(spec, "val", data_root=tmp_path)[0][0].getdata()) != list(image.getdata())


def test_a_plugin_path_stays_below_the_data_root_and_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="path"):
        SPEC.validate_python({"kind": "plugin", "name": "squares", "path": "../elsewhere"})
    spec = SPEC.validate_python({"kind": "plugin", "name": "squares", "path": "squares"})
    assert spec.data_paths() == ["squares"]
    with pytest.raises(DatasetError, match="missing dataset path"):
        build_dataset(spec, "train", data_root=tmp_path)


def test_what_the_plugin_refuses_fails_the_split_with_its_reason(tmp_path: Path) -> None:
    spec = SPEC.validate_python({"kind": "plugin", "name": "squares"})
    with pytest.raises(ValueError, match="squares has the splits train, val, test, not 'holdout'"):
        build_dataset(spec, "holdout", data_root=tmp_path)
