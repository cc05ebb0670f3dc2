"""The attention protocol: DINO's last-block CLS attention maps and threshold masks (`visualize_attention.py`).

For a few stratified test images: each head's map and the union of the heads' masks holding
`threshold` of the attention mass, in `attention.png` (and `.svg`). ViT only; `services.evaluate.inputs.check_model`
refuses other backbones before any feature is extracted.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.evaluate.inputs import EvaluationInputs
from services.evaluate.registry import Needed, ProtocolResult, Report, register_protocol


@dataclass(frozen=True)
class AttentionResult(ProtocolResult):
    """The maps' shape and how much of the patch grid the masks keep: over the union of heads
    (`mask_fraction`) and per head (`head_mask_fraction`)."""

    n_images: int
    heads: int
    grid: list[int]
    threshold: float
    mask_fraction: float
    head_mask_fraction: list[float]


@register_protocol("attention", weight=0.5)
def attention_protocol(inputs: EvaluationInputs, needed: Needed, report: Report) -> AttentionResult:
    """DINO's last-block CLS attention per head and its threshold masks; attention.png."""
    from services.evaluate.attention_maps import attention_figure, attention_masks, cls_attention, display_images
    from services.evaluate.figures import save_figure

    opts = inputs.spec.attention
    _, images, _ = inputs.sample_test_images(opts.n_images)
    attention = cls_attention(inputs.model, images).cpu()
    label = inputs.label
    save_figure(inputs.ctx, "attention.png", attention_figure(display_images(images), attention, opts.threshold,
                                                              label=label))
    masks = attention_masks(attention, opts.threshold)
    return AttentionResult(n_images=int(images.shape[0]), heads=int(attention.shape[1]),
                           grid=list(attention.shape[2:]), threshold=opts.threshold,
                           mask_fraction=float(masks.any(dim=1).float().mean()),
                           head_mask_fraction=masks.float().mean(dim=(0, 2, 3)).tolist())
