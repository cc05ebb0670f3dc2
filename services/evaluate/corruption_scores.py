"""Robustness to common corruptions: accuracy per ImageNet-C corruption x severity, and (m)CE.

Following Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations" (ICLR 2019), with E the top-1 error in percent:

    CE_c          = sum_s E_{s,c}                    / sum_s E^base_{s,c}
    relative CE_c = sum_s (E_{s,c} - E_clean)        / sum_s (E^base_{s,c} - E^base_clean)
    mCE, relative mCE = the means of CE_c and relative CE_c over corruptions (x 100, percent)

The paper's baseline is AlexNet on ImageNet; bosun's baseline is any other robustness table
(e.g. a supervised ResNet's on the same dataset), passed as `baseline`. Without one, the summary
holds the un-normalized mean corruption error, 100 - mean accuracy.

All numbers in a summary are percentages, as in the paper.

A table says where its images came from (`table_source`): the released CIFAR-10-C files, or
CIFAR-10-C's corruptions made on the fly from the job's own test images with a named severity
table (`corruption_parameters`). Only tables of one source are comparable, so a baseline of
another source is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from services.evaluate.corruption_parameters import parameter_set_for
from services.evaluate.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from services.job_context import JobStopped

if TYPE_CHECKING:
    from shared.specs.evaluate import RobustnessSpec

log = logging.getLogger(__name__)

RELEASED_CIFAR10C = "released CIFAR-10-C files"


def on_the_fly_source(parameter_set: str) -> str:
    """The source label of corruptions made by bosun: CIFAR-10-C's corruption list, applied to the
    job's test images with the severity table `parameter_set`."""
    return f"on-the-fly (CIFAR-10-C-style, parameters: {parameter_set})"


LEGACY_SOURCES = {"on-the-fly": on_the_fly_source("imagenetc"), "cifar10c": RELEASED_CIFAR10C}
"""Source labels of tables written before the parameter sets; on-the-fly tables then always used ImageNet-C's."""


def table_source(opts: RobustnessSpec, size: int) -> tuple[str, str | None]:
    """(source label, parameter set or None for the released files) of a job's table at input `size` px."""
    if opts.cifar10c_path:
        return RELEASED_CIFAR10C, None
    parameter_set = parameter_set_for(size, opts.parameter_set).name
    return on_the_fly_source(parameter_set), parameter_set

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class RobustnessTable:
    """Top-1 accuracy (fraction) of one model: `accuracy[i, j]` under corruptions[i] at severities[j]."""

    corruptions: list[str]
    severities: list[int]
    accuracy: np.ndarray
    clean_accuracy: float
    n_images: int

    def to_dict(self) -> dict[str, Any]:
        return {"corruptions": list(self.corruptions), "severities": list(self.severities),
                "accuracy": self.accuracy.tolist(), "clean_accuracy": self.clean_accuracy,
                "n_images": self.n_images}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustnessTable:
        """Inverse of `to_dict`, e.g. to load another job's table as a baseline."""
        accuracy = np.asarray(data["accuracy"], dtype=np.float64)
        if accuracy.shape != (len(data["corruptions"]), len(data["severities"])):
            raise ValueError(f"robustness table: accuracy of shape {accuracy.shape} does not match "
                             f"{len(data['corruptions'])} corruptions x {len(data['severities'])} severities")
        return cls(list(data["corruptions"]), [int(s) for s in data["severities"]], accuracy,
                   float(data["clean_accuracy"]), int(data["n_images"]))


def _accuracy(predict: Predictor, images: np.ndarray, labels: np.ndarray, batch_size: int) -> float:
    hits = 0
    for start in range(0, len(images), batch_size):
        predictions = np.asarray(predict(images[start:start + batch_size]))
        hits += int((predictions == labels[start:start + batch_size]).sum())
    return hits / len(images)


def robustness_table(predict: Predictor, images: np.ndarray, labels: Any, *,
                     corruptions: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = SEVERITIES,
                     parameter_set: str = "auto", seed: int = 0, batch_size: int = 64,
                     should_stop: Callable[[], bool] = lambda: False,
                     on_step: Callable[[int, int], None] = lambda done, total: None) -> RobustnessTable:
    """Accuracy of `predict` on clean and on every corrupted copy of `images`.

    `images` are uint8 (N, H, W, 3) (or (N, H, W) greyscale) at the model's input size, as
    ImageNet-C corrupts the 224 px centre crops; `predict` maps such a batch to class indices.
    `parameter_set` names the severity table (see `corrupt`). Image i under corruption c at
    severity s is corrupted with seed [seed, c, s, i] (c the index in `CORRUPTIONS`), so the table
    does not depend on `batch_size` or on which corruptions run. `on_step(done, total)` is called
    after each (corruption, severity) cell.
    """
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"robustness: {len(images)} images for {len(labels)} labels")
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"robustness: unknown corruptions {unknown}; known: {', '.join(CORRUPTIONS)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"robustness: severities must be in {SEVERITIES}, got {bad}")
    parameter_set_for(min(images.shape[1:3]), parameter_set)  # an unknown name fails before any image is classified
    clean = _accuracy(predict, images, labels, batch_size)
    accuracy = np.zeros((len(corruptions), len(severities)))
    total, done = len(corruptions) * len(severities), 0
    for i, name in enumerate(corruptions):
        index = CORRUPTIONS.index(name)
        for j, severity in enumerate(severities):
            if should_stop():
                raise JobStopped(f"stopped during robustness ({name}, severity {severity})")
            corrupted = np.stack([corrupt(image, name, severity, seed=[seed, index, severity, n],
                                          parameter_set=parameter_set)
                                  for n, image in enumerate(images)])
            accuracy[i, j] = _accuracy(predict, corrupted, labels, batch_size)
            done += 1
            on_step(done, total)
        log.info("robustness %s: mean accuracy %.4f", name, accuracy[i].mean())
    return RobustnessTable(list(corruptions), list(severities), accuracy, clean, len(images))


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else 100.0 * numerator / denominator


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def robustness_summary(table: RobustnessTable, baseline: RobustnessTable | None = None) -> dict[str, Any]:
    """Per-corruption and mean accuracy/error in percent; CE, relative CE, mCE and relative mCE
    when a `baseline` table over the same corruptions and severities is given.

    A corruption on which the baseline makes no error (or, for relative CE, no more error than
    on clean images) has an undefined CE, reported as None and left out of the means.
    """
    error = 100.0 * (1.0 - table.accuracy)
    clean_error = 100.0 * (1.0 - table.clean_accuracy)
    per: dict[str, dict[str, float | None]] = {
        name: {"accuracy": float(100.0 * table.accuracy[i].mean()), "error": float(error[i].mean())}
        for i, name in enumerate(table.corruptions)}
    mean_accuracy = float(100.0 * table.accuracy.mean())
    summary: dict[str, Any] = {
        "unit": "percent", "clean_accuracy": 100.0 * table.clean_accuracy, "mean_accuracy": mean_accuracy,
        "mean_corruption_error": 100.0 - mean_accuracy, "per_corruption": per,
        "accuracy": (100.0 * table.accuracy).tolist(), "corruptions": list(table.corruptions),
        "severities": list(table.severities), "n_images": table.n_images,
    }
    if baseline is None:
        return summary
    base_error = 100.0 * (1.0 - _aligned(baseline, table))
    base_clean = 100.0 * (1.0 - baseline.clean_accuracy)
    for i, name in enumerate(table.corruptions):
        per[name]["ce"] = _ratio(error[i].sum(), base_error[i].sum())
        per[name]["relative_ce"] = _ratio((error[i] - clean_error).sum(), (base_error[i] - base_clean).sum())
    summary["mce"] = _mean([per[n]["ce"] for n in table.corruptions])
    summary["relative_mce"] = _mean([per[n]["relative_ce"] for n in table.corruptions])
    return summary


def _aligned(baseline: RobustnessTable, table: RobustnessTable) -> np.ndarray:
    """The baseline's accuracies in the rows and columns of `table`."""
    missing = [c for c in table.corruptions if c not in baseline.corruptions]
    missing += [f"severity {s}" for s in table.severities if s not in baseline.severities]
    if missing:
        raise ValueError(f"baseline robustness table lacks {', '.join(map(str, missing))}")
    rows = [baseline.corruptions.index(c) for c in table.corruptions]
    cols = [baseline.severities.index(s) for s in table.severities]
    return baseline.accuracy[np.ix_(rows, cols)]


def tensor_predictor(scores_fn: Callable[[Any], Any], *, mean: Sequence[float], std: Sequence[float],
                     device: str = "cpu") -> Predictor:
    """A `Predictor` around a torch function of normalized NCHW images to class scores (e.g.
    backbone + linear head, or backbone + kNN): uint8 NHWC / NHW batch -> arg-max class indices."""
    import torch

    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
        images = (images.float() / 255.0 - mean_t) / std_t
        return scores_fn(images).argmax(dim=1).cpu().numpy()

    return predict
