"""The robustness protocol: accuracy under common corruptions and mCE (Hendrycks & Dietterich 2019).

The classifier is the linear probe's head when the job runs the linear protocol (or the spec asks
for it), otherwise weighted kNN at the headline k on the train features. Corrupted images are
made on the fly from a stratified subset of the test split, at the model's input size, with the
severity table the spec's `parameter_set` names or its size picks (CIFAR-10-C-style corruptions),
or read from CIFAR-10-C's released files; the result's `source` tells the two apart. With a
baseline job's table (of the same source) the summary adds CE and mCE. Writes
`robustness_table.json` (the table a later job can use as its baseline) and `robustness.png` (and `.svg`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from services.evaluate.corruption_scores import RobustnessTable
from services.evaluate.features import FeatureFn, backbone_output, extract_features
from services.evaluate.inputs import EvaluationInputs
from services.evaluate.knn_classifier import chunk_size_for, knn_scores
from services.evaluate.protocols.knn import headline_k
from services.evaluate.protocols.linear import LinearResult
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol


@dataclass(frozen=True)
class RobustnessResult(ProtocolResult):
    """`robustness_summary` of the table, kept whole (it is the section's first part, in percent),
    and which classifier, image source, severity table and baseline job made it.

    `source` is 'released CIFAR-10-C files' or 'on-the-fly (CIFAR-10-C-style, parameters: <set>)';
    `parameter_set` is None for the released files. `mce` and `relative_mce` are in the summary
    only when a baseline job normalizes them.
    """

    table_summary: dict[str, Any]
    classifier: str
    source: str
    baseline_job: int | None
    parameter_set: str | None = None

    @property
    def clean_accuracy(self) -> float:
        return self.table_summary["clean_accuracy"]

    @property
    def mean_accuracy(self) -> float:
        return self.table_summary["mean_accuracy"]

    @property
    def mce(self) -> float | None:
        return self.table_summary.get("mce")

    def section(self) -> dict[str, Any]:
        return {**self.table_summary, "classifier": self.classifier, "source": self.source,
                "parameter_set": self.parameter_set, "baseline_job": self.baseline_job}

    def headline(self) -> dict[str, float]:
        """Accuracies as fractions in [0, 1], as every other headline accuracy; (relative) mCE in percent."""
        out = {"robustness_clean_accuracy": self.clean_accuracy / 100.0,
               "robustness_mean_accuracy": self.mean_accuracy / 100.0}
        out.update({name: self.table_summary[name] for name in ("mce", "relative_mce")
                    if self.table_summary.get(name) is not None})
        return out

    def summary(self) -> str:
        mce = f", mCE {self.mce:.1f}" if self.mce is not None else ""
        return f"mean accuracy {self.mean_accuracy:.1f}% (clean {self.clean_accuracy:.1f}%){mce}"


@dataclass
class Classifier:
    """Class scores of images for robustness: features by `feature_fn`, then `scores` of those features."""

    name: str
    features_key: str
    feature_fn: FeatureFn
    scores: Callable[[torch.Tensor], torch.Tensor]

    @torch.no_grad()
    def predict_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.scores(features.float().flatten(1)).argmax(dim=1)


def robustness_classifier(inputs: EvaluationInputs, linear: LinearResult | None) -> Classifier:
    """The linear probe's head (when chosen; it ran before) or weighted kNN at the headline k."""
    spec, feats = inputs.spec, inputs.features
    if spec.resolved_classifier() == "linear":
        if linear is None:
            raise ValueError("robustness.classifier: the linear head is missing (the linear protocol did not run)")
        head = linear.head.cpu().eval()
        return Classifier("linear", feats.linear_key, feats.linear_fn, lambda f: head(f))
    k = headline_k(spec.knn.k)
    train, labels, n = feats.train.sets["knn"], feats.train.labels, len(inputs.classes)
    return Classifier(f"knn (k={k})", "knn", backbone_output,
                      lambda f: knn_scores(train, labels, f, k=k, num_classes=n, temperature=spec.knn.temperature,
                                           chunk_size=chunk_size_for(len(labels))))


@register_protocol("robustness", weight=4.0, needs=("linear",))
def robustness_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> RobustnessResult:
    """Accuracy per corruption x severity, mCE against the baseline job; robustness.png and robustness_table.json."""
    from services.evaluate.corruption_scores import robustness_summary, table_source
    from services.evaluate.figures import robustness_figure, save_figure

    opts = inputs.spec.robustness
    classifier = robustness_classifier(inputs, needed.get(LinearResult))
    source, parameter_set = table_source(opts, inputs.splits.size)
    if parameter_set is None:
        table = cifar10c_table(inputs, classifier, report)
    else:
        table = on_the_fly_table(inputs, classifier, report, parameter_set)
    summary = robustness_summary(table, inputs.baseline)
    info = {"classifier": classifier.name, "source": source, "parameter_set": parameter_set,
            "baseline_job": opts.baseline_job}
    inputs.ctx.save_artifact("robustness_table.json", json.dumps({"table": table.to_dict(), "summary": summary,
                                                                  **info}, indent=2))
    images = f"on the fly, {parameter_set} parameters" if parameter_set else "CIFAR-10-C files"
    save_figure(inputs.ctx, "robustness.png", robustness_figure(
        table, title=f"accuracy under corruption (%, {images})",
        label=inputs.label))
    return RobustnessResult(summary, classifier.name, source, opts.baseline_job, parameter_set)


def on_the_fly_table(inputs: EvaluationInputs, classifier: Classifier, report: Report,
                     parameter_set: str) -> RobustnessTable:
    """Corrupt a stratified subset of the test split at the model's input size with the severity
    table `parameter_set` and classify it."""
    from services.data.subset import stratified_subset
    from services.evaluate.corruption_scores import robustness_table

    spec, test, transform = inputs.spec, inputs.splits.test, inputs.splits.transform
    opts = spec.robustness
    indices = stratified_subset(test.targets, opts.max_images, seed=spec.seed)
    images = np.stack([uint8_image(test.image(i), inputs.splits.size) for i in indices])
    labels = np.asarray([test.targets[i] for i in indices])

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        images = torch.stack([transform(image) for image in batch]).to(inputs.device)
        return classifier.predict_features(classifier.feature_fn(inputs.model, images).cpu()).numpy()

    return robustness_table(predict, images, labels, corruptions=opts.corruptions, severities=opts.severities,
                            parameter_set=parameter_set, seed=spec.seed, batch_size=spec.batch_size,
                            should_stop=inputs.ctx.should_stop,
                            on_step=lambda done, total: report(done / total, f"{done}/{total} corruption cells"))


def uint8_image(image: Any, size: int) -> np.ndarray:
    """A dataset image at `size` x `size` as uint8, HxWx3 for colour or HxW for single-channel
    ('F' thermal images, 0..1, are scaled to 0..255), the form the corruptions take."""
    from PIL import Image

    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR if image.mode == "F" else Image.BICUBIC)
    if image.mode == "F":
        return np.uint8(np.clip(np.round(np.asarray(image) * 255.0), 0, 255))
    if image.mode == "L":
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def cifar10c_table(inputs: EvaluationInputs, classifier: Classifier, report: Report) -> RobustnessTable:
    """Classify CIFAR-10-C's published corrupted test images; clean accuracy on the CIFAR-10 test split."""
    from services.data.builders import open_split
    from services.data.subset import stratified_subset
    from shared.specs.dataset import Cifar10CDataset

    spec, test = inputs.spec, inputs.features.test
    opts = spec.robustness
    cells = [(c, s) for c in opts.corruptions for s in opts.severities]
    files = Cifar10CDataset(kind="cifar10c", path=opts.cifar10c_path, corruptions=opts.corruptions,
                            severities=opts.severities, max_per_split=opts.max_images * len(cells),
                            image_size=spec.dataset.image_size)
    data = open_split(files, "test", inputs.ctx, inputs.splits.transform)
    if list(data.classes) != inputs.classes:
        raise ValueError("robustness.cifar10c_path: the CIFAR-10-C classes differ from the dataset's")
    feats, labels = extract_features(inputs.model, data, feature_fn=classifier.feature_fn, device=inputs.device,
                                     batch_size=spec.batch_size, num_workers=spec.num_workers,
                                     should_stop=inputs.ctx.should_stop,
                                     on_batch=lambda done, total: report(done / total, f"{done}/{total} images"))
    hits = (classifier.predict_features(feats) == labels).numpy()
    groups = np.array([f"{c}/{s}" for c, s in data.groups])
    accuracy = np.array([[hits[groups == f"{c}/{s}"].mean() for s in opts.severities] for c in opts.corruptions])
    clean = stratified_subset(test.labels, opts.max_images, seed=spec.seed)
    clean_accuracy = float((classifier.predict_features(test.sets[classifier.features_key][clean])
                            == test.labels[clean]).double().mean())
    n_images = min(int((groups == f"{c}/{s}").sum()) for c, s in cells)
    return RobustnessTable(list(opts.corruptions), list(opts.severities), accuracy, clean_accuracy, n_images)
