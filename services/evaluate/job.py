"""The `evaluate` job: one model, one dataset, several protocols (kNN first).

Features of the train and test split are extracted once and stored as an artifact
(`features.npz`), then each protocol reads them.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import numpy as np
import torch

from services.context import JobContext
from services.evaluate.knn import chunk_size_for, knn_scores
from services.evaluate.features import extract_features
from services.models import load_backbone
from shared.specs.evaluate import EvaluateSpec

log = logging.getLogger(__name__)

HEADLINE_K = 20


def run(spec: EvaluateSpec, ctx: JobContext) -> dict[str, Any]:
    from services.data.datasets import build_dataset
    from services.data.transforms import eval_transform, input_size_for

    torch.manual_seed(spec.seed)
    device = ctx.device
    model = load_backbone(spec.backbone, spec.source, ctx).to(device).eval()
    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    channels = int(spec.backbone.kwargs.get("in_chans", 3))
    transform = eval_transform(size, channels=channels)
    train = build_dataset(spec.dataset, spec.train_split, data_root=ctx.data_root, transform=transform)
    test = build_dataset(spec.dataset, spec.test_split, data_root=ctx.data_root, transform=transform)
    if list(train.classes) != list(test.classes):
        raise ValueError(f"dataset: splits {spec.train_split!r} and {spec.test_split!r} have different classes")
    ctx.log(f"{spec.backbone.name} on {device}; {len(train)} train / {len(test)} test images, "
            f"{len(train.classes)} classes, input {size} px")

    total = len(train) + len(test)

    def report(offset: int):  # noqa: ANN202
        return lambda done, _n: ctx.progress(0.8 * (offset + done) / total, f"features {offset + done}/{total}")

    common = dict(device=device, batch_size=spec.batch_size, num_workers=spec.num_workers, should_stop=ctx.should_stop)
    f_train, y_train = extract_features(model, train, on_batch=report(0), **common)
    f_test, y_test = extract_features(model, test, on_batch=report(len(train)), **common)
    ctx.save_artifact("features.npz", _npz(train_features=f_train, train_labels=y_train, test_features=f_test,
                                           test_labels=y_test, classes=np.array(train.classes)))
    ctx.progress(0.85, "features extracted")

    result: dict[str, Any] = {"backbone": spec.backbone.name, "source": spec.source.kind,
                              "classes": list(train.classes), "n_train": len(train), "n_test": len(test)}
    if "knn" in spec.protocols:
        result["knn"] = knn_protocol(spec, ctx, f_train, y_train, f_test, y_test, list(train.classes))
        result["headline"] = {"knn_top1": result["knn"]["top1"], "knn_k": result["knn"]["k"]}
    ctx.save_artifact("result.json", json.dumps(result, indent=2))
    ctx.progress(1.0, "done")
    return result


def knn_protocol(spec: EvaluateSpec, ctx: JobContext, f_train: torch.Tensor, y_train: torch.Tensor,
                 f_test: torch.Tensor, y_test: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """Top-1/top-5 for every k; precision/recall/F1 and a confusion matrix at the headline k."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    n_classes = len(classes)
    per_k = {}
    chunk = chunk_size_for(len(f_train))
    headline = min(spec.knn.k, key=lambda k: abs(k - HEADLINE_K))
    headline_pred = None
    for k in spec.knn.k:
        scores = knn_scores(f_train, y_train, f_test, k=k, num_classes=n_classes,
                            temperature=spec.knn.temperature, chunk_size=chunk)
        top = scores.topk(min(5, n_classes), dim=1).indices
        top1 = (top[:, 0] == y_test).float().mean().item()
        top5 = (top == y_test[:, None]).any(dim=1).float().mean().item()
        per_k[str(k)] = {"top1": top1, "top5": top5}
        ctx.log_metric("knn_top1", top1, step=k)
        if k == headline:
            headline_pred = top[:, 0].numpy()
    precision, recall, f1, _ = precision_recall_fscore_support(y_test.numpy(), headline_pred, average="macro",
                                                               labels=list(range(n_classes)), zero_division=0)
    matrix = confusion_matrix(y_test.numpy(), headline_pred, labels=list(range(n_classes)))
    ctx.save_artifact("knn_confusion.png", _confusion_png(matrix, classes, f"kNN (k={headline}) confusion matrix"))
    return {"k": headline, "top1": per_k[str(headline)]["top1"], "top5": per_k[str(headline)]["top5"],
            "precision": float(precision), "recall": float(recall), "f1": float(f1),
            "temperature": spec.knn.temperature, "per_k": per_k, "chance": 1.0 / n_classes,
            "confusion_matrix": matrix.tolist()}


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()})
    return buf.getvalue()


def _confusion_png(matrix: np.ndarray, classes: list[str], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 0.8 + 0.6 * len(classes)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
