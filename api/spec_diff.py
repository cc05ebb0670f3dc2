"""The fields in which job specs differ: what the web UI's and the REST compare show beside the metrics."""

from __future__ import annotations

import json
from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested spec as dotted paths to its leaves (`dino.epochs`: 100); lists are leaves."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in value:
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


MISSING = object()


def spec_diff(specs: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The dotted fields whose values are not the same in every spec, each with its values as text
    ('' where a spec lacks the field), in the order the first spec that has them lists them."""
    flat = [flatten(s or {}) for s in specs]
    fields = list(dict.fromkeys(k for f in flat for k in f))
    rows = []
    for name in fields:
        values = [f.get(name, MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((name, ["" if v is MISSING else json.dumps(v) for v in values]))
    return rows
