"""What a landscape plot says about itself: the metric in words, and a title naming its origin.

A surface is only read correctly when the picture names what was scored (a training loss, a
probe's cross-entropy, or a stand-in), on which model, checkpoint and data, and in which job; the
plots carry these words in their title and colour bar.
"""

from __future__ import annotations

from shared.specs.landscape import LandscapeSpec

METRIC_LABELS = {
    "ce": "cross-entropy (checkpoint's classifier)",
    "probe_ce": "linear-probe cross-entropy (probe fixed)",
    "dino_loss": "DINO loss (student vs. fixed teacher)",
    "dino": "mirror-view consistency (not the training loss)",
}


def metric_label(spec: LandscapeSpec) -> str:
    """The metric in words, as the colour bar and the loss axis name it."""
    return METRIC_LABELS[spec.metric]


def checkpoint_label(spec: LandscapeSpec) -> str:
    """Where the origin's weights come from, as the spec names it."""
    source = spec.source
    if source.kind == "file":
        return f"file {source.path}"
    if source.kind == "job":
        return f"job {source.job} {source.artifact} ({source.weights})"
    return "random init"


def precision(spec: LandscapeSpec, device: str) -> str:
    """The precision of the forward passes on `device`: 'bf16', 'fp16' or 'fp32' ('auto': bf16 where the GPU has it)."""
    if spec.amp == "auto":
        if not str(device).startswith("cuda"):
            return "fp32"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return spec.amp if spec.amp in ("bf16", "fp16") else "fp32"


def autocast_dtype(spec: LandscapeSpec, device: str) -> str | None:
    """`precision` as `evaluate_tile`'s `amp` takes it: None for fp32."""
    found = precision(spec, device)
    return None if found == "fp32" else found


def subset_label(spec: LandscapeSpec) -> str:
    """The data each point is scored on: dataset, split and how much of it."""
    if spec.subset_size is not None:
        amount = f"{spec.subset_size} images"
    elif spec.subset_fraction is not None:
        amount = f"{spec.subset_fraction:.0%}"
    else:
        amount = "all"
    return f"{spec.dataset.kind} {spec.split}, {amount}"


def plot_title(spec: LandscapeSpec, job_id: int) -> str:
    """Two lines: metric, model and job; checkpoint and data subset."""
    return (f"{metric_label(spec)} · {spec.backbone.name} · job {job_id}\n"
            f"{checkpoint_label(spec)} · {subset_label(spec)} · ★ trained point")
