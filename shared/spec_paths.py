"""Dotted paths into a job spec (`dino.lr`, `knn.k`): a rerun's `set` and a sweep's axes."""

from __future__ import annotations

import copy
from typing import Any


class SpecPathError(ValueError):
    """A dotted path the spec lacks; `path` is the path as given."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def with_changes(spec: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with each dotted path of `changes` set; a path the spec lacks is refused, naming
    the first missing field and the fields known at that level."""
    spec = copy.deepcopy(spec)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = spec
        for i, key in enumerate([*parents, last]):
            if not isinstance(node, dict) or key not in node:
                known = f"; known here: {', '.join(sorted(node))}" if isinstance(node, dict) else ""
                raise SpecPathError(path, f"the spec has no field {'.'.join([*parents, last][:i + 1])!r}{known}")
            if i < len(parents):
                node = node[key]
        node[last] = value
    return spec
