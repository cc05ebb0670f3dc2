"""Self-attention maps of a timm ViT: the last block's CLS -> patch attention per head, and DINO's masks.

As in DINO's `visualize_attention.py` (Caron et al. 2021), the map of head h is the attention
the CLS query pays to every patch key in the last block. timm computes attention with fused
`scaled_dot_product_attention`, which never materializes the matrix, so the last block's
attention module is hooked and softmax(q k^T * scale) is recomputed from its own `qkv`
projection (and q/k norms, when the model has them).

`attention_masks` keeps, per head, the most-attended patches that together hold `threshold`
of the attention mass (DINO's `--threshold 0.6`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def _vit_parts(model: nn.Module) -> tuple[nn.Module, int, tuple[int, int]]:
    blocks = getattr(model, "blocks", None)
    embed = getattr(model, "patch_embed", None)
    if blocks is None or embed is None or getattr(model, "cls_token", None) is None:
        raise ValueError(f"attention maps need a timm ViT with a CLS token, got {type(model).__name__}")
    attn = blocks[-1].attn
    if not all(hasattr(attn, name) for name in ("qkv", "num_heads", "scale")):
        raise ValueError(f"the last block's attention ({type(attn).__name__}) has no fused qkv projection")
    return attn, int(getattr(model, "num_prefix_tokens", 1)), tuple(embed.patch_size)


@torch.no_grad()
def cls_attention(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(B, heads, H / patch, W / patch) attention of the CLS token to each patch in the last block.

    Values are the softmax weights over all tokens (CLS and registers included), as DINO plots
    them; a head's patch weights therefore sum to at most 1.
    """
    attn, n_prefix, (ph, pw) = _vit_parts(model)
    captured: dict[str, torch.Tensor] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        captured["x"] = args[0] if args else kwargs["x"]

    handle = attn.register_forward_hook(hook, with_kwargs=True)
    try:
        model.eval()
        model(images)
    finally:
        handle.remove()
    x = captured["x"]
    b, n, _ = x.shape
    heads = attn.num_heads
    qkv = attn.qkv(x).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    q = attn.q_norm(q) if hasattr(attn, "q_norm") else q
    k = attn.k_norm(k) if hasattr(attn, "k_norm") else k
    weights = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
    grid = (images.shape[-2] // ph, images.shape[-1] // pw)
    patches = weights[:, :, 0, n_prefix:]
    if patches.shape[-1] != grid[0] * grid[1]:
        raise ValueError(f"{patches.shape[-1]} patch tokens do not form the {grid[0]}x{grid[1]} grid of the input")
    return patches.reshape(b, heads, *grid)


def attention_masks(attention: torch.Tensor, threshold: float = 0.6) -> torch.Tensor:
    """Boolean masks, same shape, of the smallest set of top patches per map holding `threshold`
    of its mass (DINO `visualize_attention.py`: sort, normalize, cumulative sum > 1 - threshold).

    The maps are the last two dimensions (or the last one, when 1-D per map).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"attention mask threshold must be in (0, 1], got {threshold}")
    flat = attention.flatten(-2) if attention.ndim >= 3 else attention
    values, order = torch.sort(flat, dim=-1)
    values = values / values.sum(dim=-1, keepdim=True)
    keep = values.cumsum(dim=-1) > (1 - threshold)
    mask = torch.zeros_like(keep).scatter(-1, order, keep)
    return mask.reshape(attention.shape)


def _upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling of (..., h, w) maps to `size`, as DINO does (scale = patch size)."""
    rows = np.arange(size[0]) * maps.shape[-2] // size[0]
    cols = np.arange(size[1]) * maps.shape[-1] // size[1]
    return maps[..., rows[:, None], cols[None, :]]


def display_images(images: torch.Tensor) -> np.ndarray:
    """Model inputs (B, C, H, W) as uint8 (B, H, W, 3), each image min-max stretched for display."""
    x = images.detach().float().cpu()
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    x = ((x - low) / (high - low).clamp_min(1e-8) * 255).round().to(torch.uint8)
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
    return x.permute(0, 2, 3, 1).numpy()


def attention_figure(images: np.ndarray, attention: torch.Tensor, threshold: float = 0.6, *,
                     label: Any = None) -> Any:
    """One row per image: the image, the image outside the union of the heads' masks darkened,
    then each head's attention map, all heads on one colour scale (0 to the largest weight) named
    by the colour bar; a head whose map is all zero says so in its cell."""
    from services.evaluate.figures import image_grid_figure

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] != attention.shape[0]:
        raise ValueError(f"{images.shape} display images for {attention.shape[0]} attention maps")
    size = images.shape[1:3]
    maps = _upsample(attention.detach().cpu().float().numpy(), size)
    masks = _upsample(attention_masks(attention, threshold).any(dim=1).cpu().numpy(), size)
    rows = []
    for image, head_maps, mask in zip(images, maps, masks, strict=True):
        masked = np.where(mask[..., None], image, (image * 0.25).astype(image.dtype))
        rows.append([image, masked, *head_maps])
    titles = ["image", f"mask {threshold:.0%}"] + [f"head {h}" for h in range(attention.shape[1])]
    return image_grid_figure(rows, col_titles=titles, title="CLS attention of the last block", label=label,
                             colorbar="attention weight", vmin=0.0)


def attention_png(images: np.ndarray, attention: torch.Tensor, threshold: float = 0.6, *, label: Any = None) -> bytes:
    """`attention_figure` as 300 dpi PNG bytes."""
    from services.evaluate.figures import figure_png

    return figure_png(attention_figure(images, attention, threshold, label=label))
