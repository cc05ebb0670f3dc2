"""Paths that a spec or a file names below a root (the data root, the code root): symbolic links
are followed, and a path that ends up outside its root is refused."""

from __future__ import annotations

from pathlib import Path


class OutsideRoot(ValueError):
    """A path that leaves its root once `..` and symbolic links are resolved."""


def below_root(root: Path | str, relative: Path | str) -> Path:
    """`root / relative` with symbolic links resolved; OutsideRoot when it leaves `root`.

    An absolute `relative` is taken as it is, so it too must lie below `root`.
    """
    base = Path(root).resolve()
    path = (base / relative).resolve()
    if not path.is_relative_to(base):
        raise OutsideRoot(f"{str(relative)!r} leaves {base}")
    return path
