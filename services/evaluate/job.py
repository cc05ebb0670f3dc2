"""The `evaluate` job: one model, one dataset, the protocols the spec lists.

The job builds the backbone, checks up front what only the built model can tell (a ViT for
attention maps and DINO's multi-block linear features, a usable robustness baseline), extracts
the features of every split once (`features.npz`), then runs the protocols in a fixed order so
later ones can reuse earlier results: kNN (DINO `eval_knn.py`), the linear probe (DINO
`eval_linear.py`; its head also serves robustness and Grad-CAM), robustness to common
corruptions (Hendrycks & Dietterich 2019), t-SNE, DINO's attention maps, and Grad-CAM.

Each protocol writes its artifacts and a section of the result; `result["headline"]` holds the
main numbers for side-by-side comparison. Accuracies there are fractions in [0, 1]; `mce` and
`relative_mce` are percentages, as in the robustness paper, and appear only with a baseline.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from services.context import JobContext, JobStopped
from services.evaluate.features import FeatureFn, backbone_output, extract_feature_sets, extract_features
from services.evaluate.figures import confusion_png
from services.evaluate.knn import chunk_size_for, knn_scores
from services.evaluate.robustness import RobustnessTable
from services.evaluate.scores import scores_report, topk_accuracy
from services.models import load_backbone
from shared.specs.evaluate import EvaluateSpec

log = logging.getLogger(__name__)

HEADLINE_K = 20
"""The k reported as the kNN headline: the listed k closest to DINO's 20."""

FEATURES_SHARE = 0.3
"""Fraction of the progress bar spent extracting features; the protocols share the rest."""

WEIGHTS = {"knn": 1.0, "linear": 2.0, "robustness": 4.0, "tsne": 2.0, "attention": 0.5, "gradcam": 1.0}
"""Rough relative cost of the protocols, to spread progress across them."""

"""ImageNet channel means/stds averaged, for 1-channel inputs (as pretraining normalizes them)."""

Report = Callable[[float, str], None]


@dataclass
class Evaluation:
    """What the protocols read: the spec, the context, the model, the splits and their features.

    Feature sets are keyed 'knn' (the backbone's pooled output) and, when the linear probe uses
    DINO's ViT features, 'linear'; `linear_key` names the set the probe trains on.
    """

    spec: EvaluateSpec
    ctx: JobContext
    model: nn.Module
    transform: Callable[[Any], torch.Tensor]
    size: int
    train: Any
    test: Any
    train_feats: dict[str, torch.Tensor]
    y_train: torch.Tensor
    test_feats: dict[str, torch.Tensor]
    y_test: torch.Tensor
    linear_fn: FeatureFn = backbone_output
    linear_key: str = "knn"
    val_feats: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    baseline: RobustnessTable | None = None
    head: nn.Linear | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)

    @property
    def device(self) -> str:
        return self.ctx.device


class Progress:
    """Job progress: features fill the first FEATURES_SHARE, protocols the rest in proportion to WEIGHTS."""

    def __init__(self, ctx: JobContext, protocols: list[str]) -> None:
        self.ctx = ctx
        total = sum(WEIGHTS[p] for p in protocols)
        self.spans: dict[str, tuple[float, float]] = {}
        start = FEATURES_SHARE
        for name in protocols:
            width = (1.0 - FEATURES_SHARE) * WEIGHTS[name] / total
            self.spans[name] = (start, width)
            start += width

    def features(self, done: int, total: int) -> None:
        self.ctx.progress(FEATURES_SHARE * done / max(total, 1), f"features {done}/{total}")

    def protocol(self, name: str) -> Report:
        start, width = self.spans[name]
        return lambda fraction, message: self.ctx.progress(start + width * min(max(fraction, 0.0), 1.0),
                                                           f"{name}: {message}")


def run(spec: EvaluateSpec, ctx: JobContext) -> dict[str, Any]:
    """Run every protocol of the spec; returns the result (also saved as `result.json`)."""
    torch.manual_seed(spec.seed)
    progress = Progress(ctx, spec.protocols)
    ev = prepare(spec, ctx, progress)
    result: dict[str, Any] = {"backbone": spec.backbone.name, "source": spec.source.kind, "classes": ev.classes,
                              "n_train": len(ev.train), "n_test": len(ev.test), "protocols": list(spec.protocols)}
    for name in spec.protocols:
        if ctx.should_stop():
            raise JobStopped(f"stopped before the {name} protocol")
        report = progress.protocol(name)
        report(0.0, "starting")
        result[name] = PROTOCOLS[name](ev, report)
        report(1.0, "done")
        ctx.log(f"{name}: {_summary_line(name, result[name])}")
    result["headline"] = headline(result)
    ctx.save_artifact("result.json", json.dumps(result, indent=2))
    ctx.progress(1.0, "done")
    return result


# ---- preparation ---------------------------------------------------------------------------------

@dataclass
class Splits:
    """The datasets a job reads, all with the same evaluation transform."""

    train: Any
    test: Any
    val: Any | None
    transform: Callable[[Any], torch.Tensor]
    size: int


def load_splits(spec: EvaluateSpec, ctx: JobContext) -> Splits:
    """Train and test split (and the linear probe's val split), normalized as pretraining normalizes them."""
    from services.data.datasets import open_split
    from services.data.stats import normalization
    from services.data.transforms import eval_transform, input_size_for

    size = spec.dataset.image_size or input_size_for(spec.backbone.name, spec.backbone.kwargs)
    train = open_split(spec.dataset, spec.train_split, ctx)
    channels = int(spec.backbone.kwargs.get("in_chans", train.channels))
    mean, std = normalization(spec.dataset, ctx.data_root, channels)
    train.transform = transform = eval_transform(size, mean, std, channels=channels)

    def split(name: str, field: str) -> Any:
        dataset = open_split(spec.dataset, name, ctx, transform)
        if list(dataset.classes) != list(train.classes):
            raise ValueError(f"{field}: split {name!r} has other classes than {spec.train_split!r}")
        return dataset

    val = spec.linear.val_split if "linear" in spec.protocols else None
    return Splits(train=train, test=split(spec.test_split, "test_split"),
                  val=split(val, "linear.val_split") if val else None, transform=transform, size=size)


def prepare(spec: EvaluateSpec, ctx: JobContext, progress: Progress) -> Evaluation:
    """Build the model and splits, check what needs them, and extract every split's features once."""
    from services.evaluate.linear import vit_feature_fn

    model = load_backbone(spec.backbone, spec.source, ctx).to(ctx.device).eval()
    check_model(spec, model)
    baseline = load_baseline(spec, ctx)
    splits = load_splits(spec, ctx)
    train, test, val = splits.train, splits.test, splits.val
    ctx.log(f"{spec.backbone.name} on {ctx.device}; {len(train)} train / {len(test)} test images"
            f"{f' / {len(val)} val' if val is not None else ''}, {len(train.classes)} classes, input {splits.size} px")

    fns: dict[str, FeatureFn] = {"knn": backbone_output}
    if "linear" in spec.protocols and spec.linear.n_last_blocks is not None:
        fns["linear"] = vit_feature_fn(spec.linear.n_last_blocks, spec.linear.avgpool)
    total = len(train) + len(test) + (len(val) if val is not None else 0)
    common = dict(device=ctx.device, batch_size=spec.batch_size, num_workers=spec.num_workers,
                  should_stop=ctx.should_stop)
    f_train, y_train = extract_feature_sets(model, train, fns, **common,
                                            on_batch=lambda done, _n: progress.features(done, total))
    f_test, y_test = extract_feature_sets(model, test, fns, **common,
                                          on_batch=lambda done, _n: progress.features(len(train) + done, total))
    ev = Evaluation(spec=spec, ctx=ctx, model=model, transform=splits.transform, size=splits.size, train=train,
                    test=test, train_feats=f_train, y_train=y_train, test_feats=f_test, y_test=y_test,
                    baseline=baseline)
    if "linear" in fns:
        ev.linear_fn, ev.linear_key = fns["linear"], "linear"
    if val is not None:
        ev.val_feats, ev.y_val = extract_features(
            model, val, feature_fn=ev.linear_fn, **common,
            on_batch=lambda done, _n: progress.features(len(train) + len(test) + done, total))
    ctx.save_artifact("features.npz", _npz(train_features=f_train["knn"], train_labels=y_train,
                                           test_features=f_test["knn"], test_labels=y_test,
                                           classes=np.array(ev.classes)))
    return ev


def is_vit(model: nn.Module) -> bool:
    """A timm ViT with a CLS token, as attention maps and DINO's linear features need."""
    return (hasattr(model, "get_intermediate_layers") and hasattr(model, "blocks")
            and getattr(model, "cls_token", None) is not None)


def check_model(spec: EvaluateSpec, model: nn.Module) -> None:
    """Fail before any feature is extracted when a protocol cannot run on this backbone."""
    if is_vit(model):
        return
    kind = type(model).__name__
    if "attention" in spec.protocols:
        raise ValueError(f"protocols: 'attention' needs a ViT backbone with a CLS token; "
                         f"{spec.backbone.name} is a {kind}")
    if "linear" in spec.protocols and spec.linear.n_last_blocks is not None:
        raise ValueError(f"linear.n_last_blocks needs a ViT backbone with a CLS token; "
                         f"{spec.backbone.name} is a {kind} (leave it unset for the pooled output)")


def load_baseline(spec: EvaluateSpec, ctx: JobContext) -> RobustnessTable | None:
    """The baseline job's robustness table, checked to cover this job's corruptions and severities."""
    opts = spec.robustness
    if "robustness" not in spec.protocols or opts.baseline_job is None:
        return None
    where = f"robustness.baseline_job: job {opts.baseline_job}"
    try:
        data = json.loads(ctx.fetch_artifact(opts.baseline_job, "robustness_table.json").read_text())
        table = RobustnessTable.from_dict(data["table"])
    except FileNotFoundError:
        raise ValueError(f"{where} has no robustness_table.json (is it a finished evaluate job with "
                         f"the robustness protocol?)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} has an unreadable robustness table: {exc}") from None
    missing = [c for c in opts.corruptions if c not in table.corruptions]
    missing += [f"severity {s}" for s in opts.severities if s not in table.severities]
    if missing:
        raise ValueError(f"{where}'s robustness table lacks {', '.join(missing)}")
    return table


# ---- kNN and linear probe ------------------------------------------------------------------------

def headline_k(ks: list[int]) -> int:
    """The listed k closest to HEADLINE_K (the smaller one on a tie)."""
    return min(ks, key=lambda k: (abs(k - HEADLINE_K), k))


def knn_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """Top-1/top-5 for every k; precision/recall/F1 and a confusion matrix at the headline k."""
    opts, classes = ev.spec.knn, ev.classes
    k_head = headline_k(opts.k)
    chunk = chunk_size_for(len(ev.y_train))
    per_k, head_scores = {}, None
    for i, k in enumerate(opts.k):
        scores = knn_scores(ev.train_feats["knn"], ev.y_train, ev.test_feats["knn"], k=k, num_classes=len(classes),
                            temperature=opts.temperature, chunk_size=chunk)
        accuracy = topk_accuracy(scores, ev.y_test, (1, 5))
        per_k[str(k)] = {"top1": accuracy[1], "top5": accuracy[5]}
        ev.ctx.log_metric("knn_top1", accuracy[1], step=k)
        if k == k_head:
            head_scores = scores
        report((i + 1) / len(opts.k), f"k={k}")
    summary = scores_report(head_scores, ev.y_test, classes)
    ev.ctx.save_artifact("knn_confusion.png", confusion_png(np.array(summary["confusion_matrix"]), classes,
                                                            title=f"kNN (k={k_head}) confusion matrix"))
    return {"k": k_head, "top1": summary["top1"], "top5": summary["top5"], "precision": summary["precision"],
            "recall": summary["recall"], "f1": summary["f1"], "temperature": opts.temperature, "per_k": per_k,
            "chance": 1.0 / len(classes), "per_class": summary["per_class"],
            "confusion_matrix": summary["confusion_matrix"]}


def linear_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """DINO's linear probe on the stored features: final test numbers, best epoch on the val split."""
    from services.evaluate.linear import linear_probe

    opts, ctx = ev.spec.linear, ev.ctx
    x_test = ev.test_feats[ev.linear_key]
    separate_val = ev.val_feats is not None
    x_val, y_val = (ev.val_feats, ev.y_val) if separate_val else (x_test, ev.y_test)

    def on_epoch(epoch: int, stats: dict[str, float]) -> None:
        ctx.log_metric("linear_loss", stats["loss"], step=epoch)
        ctx.log_metric("linear_val_top1", stats["top1"], step=epoch)
        report(epoch / opts.epochs, f"epoch {epoch}/{opts.epochs}")

    probe = linear_probe(ev.train_feats[ev.linear_key], ev.y_train, x_val, y_val, num_classes=len(ev.classes),
                         epochs=opts.epochs, lr=opts.lr, weight_decay=opts.weight_decay, batch_size=opts.batch_size,
                         seed=ev.spec.seed, device=ev.device, should_stop=ctx.should_stop, on_epoch=on_epoch)
    ev.head = probe.head
    with torch.no_grad():
        test_scores = probe.head(x_test.float()) if separate_val else probe.final_scores
    summary = scores_report(test_scores, ev.y_test, ev.classes)
    ctx.save_artifact("linear_confusion.png", confusion_png(np.array(summary["confusion_matrix"]), ev.classes,
                                                            title="linear probe confusion matrix"))
    ctx.save_artifact("linear_head.pt", _torch_bytes({"state_dict": probe.head.state_dict(), "classes": ev.classes,
                                                      "n_last_blocks": opts.n_last_blocks, "avgpool": opts.avgpool}))
    return {"top1": summary["top1"], "top5": summary["top5"], "precision": summary["precision"],
            "recall": summary["recall"], "f1": summary["f1"], "best_val": probe.best_val,
            "best_epoch": probe.best_epoch, "val_split": opts.val_split or ev.spec.test_split,
            "features": _linear_features_name(opts.n_last_blocks, opts.avgpool), "feature_dim": int(x_test.shape[1]),
            "epochs": opts.epochs, "history": probe.history, "per_class": summary["per_class"],
            "confusion_matrix": summary["confusion_matrix"]}


def _linear_features_name(n_last_blocks: int | None, avgpool: bool) -> str:
    if n_last_blocks is None:
        return "pooled backbone output"
    return f"CLS of the last {n_last_blocks} blocks" + (" + average patch token" if avgpool else "")


# ---- robustness ----------------------------------------------------------------------------------

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


def robustness_classifier(ev: Evaluation) -> Classifier:
    """The linear probe's head (when chosen; it ran before) or weighted kNN at the headline k."""
    if ev.spec.resolved_classifier() == "linear":
        if ev.head is None:
            raise ValueError("robustness.classifier: the linear head is missing (the linear protocol did not run)")
        head = ev.head.cpu().eval()
        return Classifier("linear", ev.linear_key, ev.linear_fn, lambda f: head(f))
    k = headline_k(ev.spec.knn.k)
    train, labels, n = ev.train_feats["knn"], ev.y_train, len(ev.classes)
    return Classifier(f"knn (k={k})", "knn", backbone_output,
                      lambda f: knn_scores(train, labels, f, k=k, num_classes=n, temperature=ev.spec.knn.temperature,
                                           chunk_size=chunk_size_for(len(labels))))


def robustness_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """Accuracy per corruption x severity, mCE against the baseline job; robustness.png and robustness_table.json."""
    from services.evaluate.robustness import robustness_png, robustness_summary

    opts = ev.spec.robustness
    classifier = robustness_classifier(ev)
    if opts.cifar10c_path:
        table, source = cifar10c_table(ev, classifier, report), "cifar10c"
    else:
        table, source = on_the_fly_table(ev, classifier, report), "on-the-fly"
    summary = robustness_summary(table, ev.baseline)
    info = {"classifier": classifier.name, "source": source, "baseline_job": opts.baseline_job}
    ev.ctx.save_artifact("robustness_table.json", json.dumps({"table": table.to_dict(), "summary": summary, **info},
                                                             indent=2))
    ev.ctx.save_artifact("robustness.png", robustness_png(table))
    return {**summary, **info}


def on_the_fly_table(ev: Evaluation, classifier: Classifier, report: Report) -> RobustnessTable:
    """Corrupt a stratified subset of the test split at the model's input size and classify it."""
    from services.data.subset import stratified_subset
    from services.evaluate.robustness import robustness_table

    opts = ev.spec.robustness
    indices = stratified_subset(ev.test.targets, opts.max_images, seed=ev.spec.seed)
    images = np.stack([uint8_image(ev.test.image(i), ev.size) for i in indices])
    labels = np.asarray([ev.test.targets[i] for i in indices])

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        inputs = torch.stack([ev.transform(image) for image in batch]).to(ev.device)
        return classifier.predict_features(classifier.feature_fn(ev.model, inputs).cpu()).numpy()

    return robustness_table(predict, images, labels, corruptions=opts.corruptions, severities=opts.severities,
                            seed=ev.spec.seed, batch_size=ev.spec.batch_size, should_stop=ev.ctx.should_stop,
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


def cifar10c_table(ev: Evaluation, classifier: Classifier, report: Report) -> RobustnessTable:
    """Classify CIFAR-10-C's published corrupted test images; clean accuracy on the CIFAR-10 test split."""
    from services.data.datasets import open_split
    from services.data.subset import stratified_subset
    from shared.specs.datasets import Cifar10CDataset

    opts = ev.spec.robustness
    cells = [(c, s) for c in opts.corruptions for s in opts.severities]
    files = Cifar10CDataset(kind="cifar10c", path=opts.cifar10c_path, corruptions=opts.corruptions,
                            severities=opts.severities, max_per_split=opts.max_images * len(cells),
                            image_size=ev.spec.dataset.image_size)
    data = open_split(files, "test", ev.ctx, ev.transform)
    if list(data.classes) != ev.classes:
        raise ValueError("robustness.cifar10c_path: the CIFAR-10-C classes differ from the dataset's")
    feats, labels = extract_features(ev.model, data, feature_fn=classifier.feature_fn, device=ev.device,
                                     batch_size=ev.spec.batch_size, num_workers=ev.spec.num_workers,
                                     should_stop=ev.ctx.should_stop,
                                     on_batch=lambda done, total: report(done / total, f"{done}/{total} images"))
    hits = (classifier.predict_features(feats) == labels).numpy()
    groups = np.array([f"{c}/{s}" for c, s in data.groups])
    accuracy = np.array([[hits[groups == f"{c}/{s}"].mean() for s in opts.severities] for c in opts.corruptions])
    clean = stratified_subset(ev.y_test, opts.max_images, seed=ev.spec.seed)
    test_feats = ev.test_feats[classifier.features_key][clean]
    clean_accuracy = float((classifier.predict_features(test_feats) == ev.y_test[clean]).double().mean())
    n_images = min(int((groups == f"{c}/{s}").sum()) for c, s in cells)
    return RobustnessTable(list(opts.corruptions), list(opts.severities), accuracy, clean_accuracy, n_images)


# ---- t-SNE, attention maps, Grad-CAM -------------------------------------------------------------

def tsne_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """t-SNE of a stratified subset of the test features; tsne.png and tsne.npz (coordinates, labels)."""
    from services.data.subset import stratified_subset
    from services.evaluate.tsne import tsne_embedding, tsne_png

    opts = ev.spec.tsne
    indices = np.asarray(stratified_subset(ev.y_test, opts.max_points, seed=ev.spec.seed))
    features, labels = ev.test_feats["knn"][indices], ev.y_test[indices].numpy()
    perplexity = min(opts.perplexity, float(len(indices) - 1))
    coords = tsne_embedding(features, perplexity=perplexity, learning_rate=opts.learning_rate,
                            max_iter=opts.max_iter, seed=ev.spec.seed)
    report(0.9, "plotting")
    title = f"t-SNE of {ev.spec.backbone.name} features ({ev.spec.test_split}, perplexity {perplexity:g})"
    ev.ctx.save_artifact("tsne.png", tsne_png(coords, labels, ev.classes, title=title))
    ev.ctx.save_artifact("tsne.npz", _npz(coords=coords, labels=labels, indices=indices, classes=np.array(ev.classes)))
    return {"n_points": int(len(indices)), "perplexity": perplexity, "learning_rate": opts.learning_rate,
            "max_iter": opts.max_iter}


def _sample_batch(ev: Evaluation, n: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """`n` test images, one class after another (stratified), as model inputs and labels."""
    from services.data.subset import stratified_subset

    indices = stratified_subset(ev.test.targets, n, seed=ev.spec.seed)
    images = torch.stack([ev.test[i][0] for i in indices]).to(ev.device)
    return indices, images, torch.tensor([ev.test.targets[i] for i in indices])


def attention_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """DINO's last-block CLS attention per head and its threshold masks; attention.png."""
    from services.evaluate.attention import attention_masks, attention_png, cls_attention, display_images

    opts = ev.spec.attention
    _, images, _ = _sample_batch(ev, opts.n_images)
    attention = cls_attention(ev.model, images).cpu()
    ev.ctx.save_artifact("attention.png", attention_png(display_images(images), attention, opts.threshold))
    masks = attention_masks(attention, opts.threshold)
    return {"n_images": int(images.shape[0]), "heads": int(attention.shape[1]), "grid": list(attention.shape[2:]),
            "threshold": opts.threshold, "mask_fraction": float(masks.any(dim=1).float().mean()),
            "head_mask_fraction": masks.float().mean(dim=(0, 2, 3)).tolist()}


class ProbeModel(nn.Module):
    """Backbone, feature function and linear head as one module, so Grad-CAM can explain class logits."""

    def __init__(self, backbone: nn.Module, feature_fn: FeatureFn, head: nn.Linear) -> None:
        super().__init__()
        self.backbone, self.head, self.feature_fn = backbone, head, feature_fn

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_fn(self.backbone, images).flatten(1))


def gradcam_protocol(ev: Evaluation, report: Report) -> dict[str, Any]:
    """Grad-CAM of test images for the linear probe's predicted class or the class's mean embedding; gradcam.png."""
    from services.evaluate.attention import display_images
    from services.evaluate.gradcam import (
        EmbeddingSimilarityTarget,
        class_targets,
        default_target_layer,
        gradcam_maps,
        gradcam_png,
    )

    target = ev.spec.resolved_gradcam_target()
    _, images, labels = _sample_batch(ev, ev.spec.gradcam.n_images)
    layer, reshape = default_target_layer(ev.model, (ev.size, ev.size))
    if target == "class":
        if ev.head is None:
            raise ValueError("gradcam.target 'class': the linear head is missing (the linear protocol did not run)")
        probe = ProbeModel(ev.model, ev.linear_fn, ev.head.to(ev.device)).eval()
        with torch.no_grad():
            predicted = probe(images).argmax(dim=1).cpu()
        cams = gradcam_maps(probe, images, class_targets(predicted.tolist()), target_layer=layer,
                            reshape_transform=reshape)
        pairs = zip(labels.tolist(), predicted.tolist(), strict=True)
        titles = [f"{ev.classes[t]} > {ev.classes[p]}" for t, p in pairs]
    else:
        prototypes = class_prototypes(ev.train_feats["knn"], ev.y_train, len(ev.classes))
        targets = [EmbeddingSimilarityTarget(prototypes[t]) for t in labels.tolist()]
        cams = gradcam_maps(ev.model, images, targets, target_layer=layer, reshape_transform=reshape)
        titles = [ev.classes[t] for t in labels.tolist()]
    report(0.9, "plotting")
    ev.ctx.save_artifact("gradcam.png", gradcam_png(display_images(images), cams, titles))
    return {"n_images": int(images.shape[0]), "target": target, "layer": _module_name(ev.model, layer),
            "titles": titles}


def class_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, D) mean of each class's L2-normalized features (zeros for a class without samples)."""
    normed = torch.nn.functional.normalize(features.float(), dim=1)
    sums = torch.zeros(num_classes, normed.shape[1]).index_add_(0, labels.long(), normed)
    counts = torch.bincount(labels.long(), minlength=num_classes).clamp_min(1).unsqueeze(1)
    return sums / counts


def _module_name(model: nn.Module, module: nn.Module) -> str:
    return next((name for name, m in model.named_modules() if m is module), type(module).__name__)


PROTOCOLS: dict[str, Callable[[Evaluation, Report], dict[str, Any]]] = {
    "knn": knn_protocol, "linear": linear_protocol, "robustness": robustness_protocol,
    "tsne": tsne_protocol, "attention": attention_protocol, "gradcam": gradcam_protocol,
}


# ---- result --------------------------------------------------------------------------------------

def headline(result: dict[str, Any]) -> dict[str, float]:
    """The main numbers of a result, flat, for comparing jobs side by side."""
    out: dict[str, float] = {}
    if "knn" in result:
        knn = result["knn"]
        out.update(knn_top1=knn["top1"], knn_top5=knn["top5"], knn_f1=knn["f1"])
    if "linear" in result:
        linear = result["linear"]
        out.update(linear_top1=linear["top1"], linear_top5=linear["top5"], linear_f1=linear["f1"],
                   linear_best_val_top1=linear["best_val"]["top1"])
    if "robustness" in result:
        robust = result["robustness"]
        out.update(robustness_clean_accuracy=robust["clean_accuracy"] / 100.0,
                   robustness_mean_accuracy=robust["mean_accuracy"] / 100.0)
        out.update({name: robust[name] for name in ("mce", "relative_mce") if robust.get(name) is not None})
    return out


def _summary_line(name: str, section: dict[str, Any]) -> str:
    if name == "knn":
        return f"top-1 {section['top1']:.4f} at k={section['k']}"
    if name == "linear":
        return f"top-1 {section['top1']:.4f} (best {section['best_val']['top1']:.4f} at epoch {section['best_epoch']})"
    if name == "robustness":
        mce = f", mCE {section['mce']:.1f}" if section.get("mce") is not None else ""
        return f"mean accuracy {section['mean_accuracy']:.1f}% (clean {section['clean_accuracy']:.1f}%){mce}"
    return "artifacts written"


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in arrays.items()})
    return buf.getvalue()


def _torch_bytes(state: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()
