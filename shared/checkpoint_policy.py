"""Which of a job's checkpoints stay in the object store: the last N, plus the best by one metric.

A job writes a checkpoint, then its commit marker (`checkpoints/latest`); only after that are
older checkpoints pruned. The committed one is never pruned, so a resumed attempt always finds
the checkpoint the marker names.

"Best" is judged from the job's logged metrics: a checkpoint's value is the newest value of the
metric that the attempt saving it had logged before the save (pretraining logs its metrics by
iteration and its checkpoints by epoch, so the two steps are not compared). A checkpoint with no
value yet cannot be best; of equal values the earlier checkpoint stays best. The best one is
named in a small marker next to the commit marker (`checkpoints/best`, see shared.storage).

The settings (`BOSUN_CHECKPOINT_KEEP_LAST`, `BOSUN_CHECKPOINT_KEEP_BEST`) give the default; a
pretraining spec may override both (`checkpoint_keep_last`, `checkpoint_keep_best`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

KEEP_BEST_PATTERN = r"^[A-Za-z0-9_.\-/]{1,100}:(min|max)$"
_KEEP_BEST = re.compile(KEEP_BEST_PATTERN)


@dataclass(frozen=True)
class BestBy:
    """The metric a best checkpoint is chosen by, and whether higher or lower is better."""

    metric: str
    mode: Literal["min", "max"]

    def better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        return value > than if self.mode == "max" else value < than


@dataclass(frozen=True)
class CheckpointPolicy:
    keep_last: int = 2
    best: BestBy | None = None


def parse_keep_best(text: str | None) -> BestBy | None:
    """`knn_top1:max` -> BestBy('knn_top1', 'max'); empty or None -> no best checkpoint kept."""
    if not text:
        return None
    if not _KEEP_BEST.match(text):
        raise ValueError(f"keep-best {text!r}: expected METRIC:max or METRIC:min, e.g. knn_top1:max")
    metric, _, mode = text.rpartition(":")
    return BestBy(metric, mode)  # type: ignore[arg-type]


def policy_for(settings: Any, spec: dict[str, Any]) -> CheckpointPolicy:
    """The settings' policy with the job spec's `checkpoint_keep_last`/`checkpoint_keep_best` over it."""
    keep_last = spec.get("checkpoint_keep_last") or settings.checkpoint_keep_last
    best = spec.get("checkpoint_keep_best")
    return CheckpointPolicy(keep_last=int(keep_last),
                            best=parse_keep_best(settings.checkpoint_keep_best if best is None else best))


def checkpoints_to_delete(keys: list[str], *, keep_last: int, committed: str, best: str | None) -> list[str]:
    """The checkpoint keys (zero-padded steps, so sorted = oldest first) outside last-N ∪ {committed, best}."""
    ordered = sorted(keys)
    kept = set(ordered[-keep_last:]) | {committed} | ({best} if best else set())
    return [key for key in ordered if key not in kept]
