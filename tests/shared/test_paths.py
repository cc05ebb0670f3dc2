"""below_root: the one check that a named path stays below its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.paths import OutsideRoot, below_root


def test_a_path_below_the_root_comes_back_resolved(tmp_path: Path) -> None:
    (tmp_path / "root" / "a").mkdir(parents=True)
    assert below_root(tmp_path / "root", "a/../a") == (tmp_path / "root" / "a").resolve()
    assert below_root(tmp_path / "root", tmp_path / "root" / "a") == (tmp_path / "root" / "a").resolve()


@pytest.mark.parametrize("relative", ["..", "a/../../x", "/etc/passwd", "out"])
def test_a_path_that_leaves_the_root_is_refused(tmp_path: Path, relative: str) -> None:
    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "out").symlink_to(tmp_path)  # a link inside that leads outside
    with pytest.raises(OutsideRoot, match="leaves"):
        below_root(tmp_path / "root", relative)
