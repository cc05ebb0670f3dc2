"""Dotted paths into a job spec (`dino.lr`, `knn.k`): a rerun's `set`, a sweep's axes, and the field names
a refusal suggests."""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Sequence
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


def fields_at(model: type, path: Sequence[str | int]) -> list[str]:
    """The field names a spec model accepts at `path` (field names, list indexes and dict keys below
    it), or [] where the path leaves the models; what a "did you mean" picks from."""
    node: Any = model
    for key in path:
        if isinstance(key, int):
            continue
        fields = getattr(node, "model_fields", None)
        if fields is None or key not in fields:
            return []
        node = nested_model(fields[key].annotation)
        if node is None:
            return []
    fields = getattr(node, "model_fields", None)
    return [name for name in fields] if fields else []


def nested_model(annotation: Any) -> type | None:
    """The pydantic model inside a field's type (`X`, `X | None`, `list[X]`, `Annotated[X, ...]`), if one."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def closest(name: str, names: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the nearest of `names` to `name`, or '' when none is near."""
    close = difflib.get_close_matches(name, list(names), n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
