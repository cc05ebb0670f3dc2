"""Backbones from timm, and the weights they start from: a file below the data root or another job's checkpoint.

The weights files the team keeps on the NAS come in a few forms, all read by
`services.job_context.load_torch`, which never runs code from a file:

- facebookresearch/dino checkpoints: the backbone-only `*_pretrain.pth` (plain ViT or ResNet keys)
  and the full training checkpoints, whose `teacher` / `student` entries carry the multi-crop
  wrapper's `backbone.` prefix (and the student DistributedDataParallel's `module.`), beside DINO's
  projection head (`head.`); `utils.load_pretrained_weights` takes one entry and strips both prefixes;
- timm and torchvision `.pth` files, and timm training checkpoints (`state_dict`);
- `.safetensors` files;
- a Hugging Face hub cache folder (`models--timm--<name>/snapshots/<rev>/`) holding `model.safetensors`
  or `pytorch_model.bin` beside timm's `config.json`. It is read as plain files: the hub is never
  asked, so nothing is downloaded and no network is needed.

The weights must then fit the backbone (`fit_weights`): classifier and projection-head weights are
dropped (backbones are built with `num_classes=0`), a first convolution of 3 channels serves a
backbone of another `in_chans` (the source's `first_conv`), and a ViT's position embeddings are
resampled to its patch grid, as timm does for its own pretrained weights. Anything else that does
not fit fails the job with one line naming the missing, unexpected and reshaped keys.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from services.job_context import JobContext, load_torch
from shared.paths import OutsideRoot, below_root
from shared.specs.common import BackboneSpec, ModelSource, relative_data_path

log = logging.getLogger(__name__)

HF_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
"""The weights files of a timm repository on the Hugging Face hub, in the order timm prefers them."""
COLOURS = {"red": 0, "green": 1, "blue": 2}
"""Input channel of each colour in RGB first-convolution weights."""
SHOWN_KEYS = 4
"""How many keys of each kind a fit error names before '...'."""


class WeightsError(ValueError):
    """A weights file that does not fit the backbone."""


def build_backbone(spec: BackboneSpec) -> nn.Module:
    """`timm.create_model(name, num_classes=0, **kwargs)`: the backbone alone, features out."""
    import timm

    try:
        return timm.create_model(spec.name, pretrained=False, num_classes=0, **spec.kwargs)
    except TypeError as exc:
        raise ValueError(f"backbone.kwargs not accepted by {spec.name}: {exc}") from exc


# ---------------------------------------------------------------- reading a source


@dataclass(frozen=True)
class SourceWeights:
    """What a weights source holds: the loaded file, a description of it for messages, and the
    backbone it records (`{name, kwargs}` of a bosun checkpoint, or of a Hugging Face `config.json`)."""

    state: dict[str, Any]
    origin: str
    recorded: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int | None:
        """The epochs the weights were trained for, where the file says: `epoch` of a bosun
        `checkpoint.pt`, a trainer checkpoint or a facebookresearch/dino checkpoint, else `epochs`
        of a bosun `checkpoint.pt` written before it had `epoch`; None when it says neither."""
        value = self.state.get("epoch")
        if value is None and isinstance(self.state.get("backbone"), dict) and "method" in self.state:
            value = self.state.get("epochs")
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _below(path: Path, root: Path, origin: str) -> Path:
    """`path`, after checking that it (symbolic links followed) stays below the data root."""
    try:
        below_root(root, path)
    except OutsideRoot:
        raise WeightsError(f"{origin}: {path.name} leads outside the data root") from None
    return path  # not resolved: a hub cache's blob has no suffix, its link does


def hf_repo_folder(folder: Path, backbone: str, origin: str) -> Path:
    """The repository folder of `backbone` in a hub cache folder: `models--timm--<backbone>` or
    `models--timm--<backbone>.<tag>`, when exactly one of them is there."""
    prefix = f"models--timm--{backbone}"
    found = sorted(p.name for p in folder.iterdir()
                   if p.is_dir() and (p.name == prefix or p.name.startswith(prefix + ".")))
    if not found:
        raise WeightsError(f"{origin}: neither a Hugging Face snapshot or repository folder nor a cache "
                           f"folder holding {prefix}")
    if len(found) > 1:
        raise WeightsError(f"{origin}: a Hugging Face cache folder with several ({', '.join(found)}): "
                           f"name one in source.path")
    return folder / found[0]


def hf_snapshot(folder: Path, revision: str | None, backbone: str, origin: str) -> Path:
    """The snapshot folder that `folder` names: a snapshot itself, a repository folder
    (`models--timm--<name>`, whose `revision` is a ref under refs/ or a snapshot's name; default
    refs/main, else its only snapshot), or a cache folder holding the backbone's repository."""
    if any((folder / name).is_file() for name in HF_WEIGHTS_FILES):
        return folder
    if not (folder / "snapshots").is_dir():
        folder = hf_repo_folder(folder, backbone, origin)
        origin = f"{origin}/{folder.name}"
    found = folder / "snapshots"
    snapshots = sorted(p.name for p in found.iterdir() if p.is_dir()) if found.is_dir() else []
    ref = folder / "refs" / (revision or "main")
    if ref.is_file():
        wanted = ref.read_text().strip()
    elif revision is not None:
        wanted = revision
    elif len(snapshots) == 1:
        wanted = snapshots[0]
    else:
        raise WeightsError(f"{origin}: no refs/main and {len(snapshots)} snapshots; name one in source.revision")
    if wanted not in snapshots:
        raise WeightsError(f"{origin}: no snapshot {wanted!r} (snapshots: {', '.join(snapshots) or 'none'})")
    return found / wanted


def read_hf_snapshot(snapshot: Path, root: Path, origin: str) -> SourceWeights:
    """The weights of a hub snapshot folder and the backbone its timm `config.json` records."""
    weights = next((snapshot / name for name in HF_WEIGHTS_FILES if (snapshot / name).is_file()), None)
    if weights is None:
        raise WeightsError(f"{origin}: the snapshot {snapshot.name} has none of {', '.join(HF_WEIGHTS_FILES)}")
    origin = f"{origin} ({weights.name} of snapshot {snapshot.name[:12]})"
    state = load_torch(_below(weights, root, origin), name=origin)
    recorded: dict[str, Any] = {}
    config = snapshot / "config.json"
    if config.is_file():
        try:
            cfg = json.loads(_below(config, root, origin).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{origin}: config.json is not JSON ({exc})") from None
        if isinstance(cfg, dict) and isinstance(cfg.get("architecture"), str):
            model_args = cfg.get("model_args")
            recorded = {"name": cfg["architecture"], "kwargs": model_args if isinstance(model_args, dict) else {}}
    return SourceWeights(state, origin, recorded)


def read_source(source: ModelSource, ctx: JobContext, backbone: str) -> SourceWeights | None:
    """The weights `source` names for a `backbone` (a timm name), loaded on the CPU; None for random init.

    A Hugging Face snapshot whose `config.json` names another architecture than `backbone` is refused
    here: its keys might even fit, but it is not the model the spec says it evaluates.
    """
    if source.kind == "random":
        return None
    if source.kind == "job":
        path = ctx.fetch_artifact(int(source.job), source.artifact)
        origin = f"job {source.job} artifact {source.artifact}"
        state = load_torch(path, name=origin)
        recorded = state.get("backbone")
        return SourceWeights(state, origin, recorded if isinstance(recorded, dict) else {})
    root = Path(ctx.data_root)
    path = root / relative_data_path(str(source.path))
    if path.is_dir():
        origin = f"weights folder {source.path}"
        weights = read_hf_snapshot(hf_snapshot(path, source.revision, backbone, origin), root, origin)
        recorded_name = weights.recorded.get("name")
        if recorded_name is not None and recorded_name != backbone:
            raise WeightsError(f"{weights.origin}: its config.json names backbone {recorded_name!r}, "
                               f"the spec {backbone!r}")
        return weights
    if not path.is_file():
        raise FileNotFoundError(f"source.path: no weights file or Hugging Face cache folder {source.path!r} "
                                f"below the data root")
    origin = f"weights file {source.path}"
    state = load_torch(_below(path, root, origin), name=origin)
    recorded = state.get("backbone")
    return SourceWeights(state, origin, recorded if isinstance(recorded, dict) else {})


# ---------------------------------------------------------------- fitting weights to a backbone


def checkpoint_entry(state: dict[str, Any], which: str = "teacher") -> tuple[dict[str, Any], str | None]:
    """The dict of weights in a checkpoint, and the entry it came from (None: the file is one).

    Like DINO's `load_pretrained_weights`, the `which` entry (teacher or student) is taken when the
    file has it; otherwise timm's `state_dict` or a `model` entry. A file with the other of
    teacher/student only is an error rather than a silent swap.
    """
    if isinstance(state.get(which), dict):
        return state[which], which
    other = {"teacher": "student", "student": "teacher"}.get(which)
    if other is not None and isinstance(state.get(other), dict):
        raise WeightsError(f"has no {which!r} weights, only {other!r}: set source.weights to {other!r}")
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            return state[key], key
    return state, None


def clean_state_dict(state: dict[str, Any], which: str = "teacher") -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's weights entry (`checkpoint_entry`), with the `module.` and
    `backbone.` prefixes stripped. Only leading prefixes go: DINO's reference replaces the words
    anywhere, which would break timm's hybrid ViTs (`patch_embed.backbone.`)."""
    weights, _ = checkpoint_entry(state, which)
    cleaned = {}
    for name, value in weights.items():
        if isinstance(value, torch.Tensor):
            cleaned[str(name).removeprefix("module.").removeprefix("backbone.")] = value
    return cleaned


def _cfg_names(model: nn.Module, key: str) -> list[str]:
    """Module names timm's pretrained config gives under `key` ('first_conv', 'classifier')."""
    names = (getattr(model, "pretrained_cfg", None) or {}).get(key) or ()
    return [names] if isinstance(names, str) else [str(n) for n in names]


def _is_head(name: str, model: nn.Module) -> bool:
    """Whether a key the backbone lacks belongs to a classifier or DINO's projection head."""
    heads = ["head", *_cfg_names(model, "classifier")]
    return any(name == h or name.startswith(h + ".") for h in heads)


def adapt_first_conv(weight: torch.Tensor, in_chans: int, first_conv: str) -> torch.Tensor:
    """First-convolution weights (O, I, kH, kW) for a backbone of `in_chans` input channels.

    'sum' is timm's `adapt_input_conv`: for 1 channel the RGB kernels are summed (a grey image
    then gives the response the RGB weights give to that grey replicated), for more channels they
    are repeated and scaled by 3/in_chans. 'red', 'green', 'blue' keep that one colour's kernel for
    a 1-channel backbone, the per-channel comparison of the lab notes (22.02.2023). Weights this
    cannot adapt raise ValueError (a colour for more than one channel) or NotImplementedError (timm:
    a 1-channel kernel for 3 channels).
    """
    if first_conv == "sum":
        from timm.models import adapt_input_conv

        return adapt_input_conv(in_chans, weight)
    if in_chans != 1 or weight.shape[1] != 3:
        raise ValueError(f"first_conv {first_conv!r} picks one colour of 3-channel weights for a 1-channel "
                         f"backbone; these weights have {weight.shape[1]} channels, the backbone {in_chans}")
    channel = COLOURS[first_conv]
    return weight[:, channel:channel + 1].clone()


def _resample_pos_embed(model: nn.Module, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """A ViT's absolute position embedding resampled to the backbone's patch grid (timm's
    `resample_abs_pos_embed`, as its checkpoint filters do), or None when it is not one."""
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    if grid is None or weight.ndim != 3 or weight.shape[0] != 1 or weight.shape[2] != target.shape[2]:
        return None
    prefix = 0 if getattr(model, "no_embed_class", False) else int(getattr(model, "num_prefix_tokens", 1))
    side = round((weight.shape[1] - prefix) ** 0.5)
    if side * side != weight.shape[1] - prefix or prefix + grid[0] * grid[1] != target.shape[1]:
        return None
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(weight, new_size=list(grid), old_size=[side, side], num_prefix_tokens=prefix)


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_KEYS])
    return f"{shown}, ..." if len(names) > SHOWN_KEYS else shown


def fit_weights(model: nn.Module, weights: dict[str, torch.Tensor], origin: str,
                first_conv: str = "sum") -> tuple[dict[str, torch.Tensor], list[str]]:
    """`weights` made to fit `model`, and a note of each change; raises `WeightsError` in one line
    naming the keys that still do not fit (a few of each, and how many).

    Head weights the backbone lacks are dropped; the first convolution is adapted when its input
    channels differ (`adapt_first_conv`); a `pos_embed` of another patch grid is resampled. BatchNorm
    `num_batches_tracked` counters may be missing (older torchvision files lack them).
    """
    own = model.state_dict()
    fitted: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    dropped = [k for k in weights if k not in own and _is_head(k, model)]
    if dropped:
        notes.append(f"{len(dropped)} head weights dropped")
    first_convs = {f"{name}.weight" for name in _cfg_names(model, "first_conv")}
    for key, value in weights.items():
        if key in dropped:
            continue
        target = own.get(key)
        if target is not None and value.shape != target.shape:
            if key in first_convs and value.ndim == 4 and value.shape[0] == target.shape[0] \
                    and value.shape[2:] == target.shape[2:]:
                try:
                    value = adapt_first_conv(value, target.shape[1], first_conv)
                except ValueError as exc:
                    raise WeightsError(f"{origin}: {exc}") from None
                except NotImplementedError:
                    fitted[key] = value  # reported below as a key of another shape
                    continue
                notes.append(f"{key} from {weights[key].shape[1]} to {target.shape[1]} input channels ({first_conv})")
            elif key.endswith("pos_embed") and (resampled := _resample_pos_embed(model, value, target)) is not None:
                value = resampled
                notes.append(f"{key} resampled from {weights[key].shape[1]} to {target.shape[1]} tokens")
        fitted[key] = value
    missing = [k for k in own if k not in fitted and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in fitted if k not in own]
    reshaped = [f"{k} {list(v.shape)} vs {list(own[k].shape)}" for k, v in fitted.items()
                if k in own and v.shape != own[k].shape]
    if missing or unexpected or reshaped:
        name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__)
        parts = [f"{len(missing)} missing ({_few(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({_few(unexpected)})" if unexpected else "",
                 f"{len(reshaped)} of another shape (weights vs backbone: {_few(reshaped)})" if reshaped else ""]
        raise WeightsError(f"{origin} does not fit backbone {name}: {'; '.join(p for p in parts if p)}")
    return fitted, notes


def load_weights(model: nn.Module, state: dict[str, Any], which: str, origin: str,
                 first_conv: str = "sum") -> list[str]:
    """Load a checkpoint's `which` weights (teacher/student, where it has both) into `model`;
    returns the notes of `fit_weights` (what was dropped, adapted or resampled)."""
    try:
        weights = clean_state_dict(state, which)
    except WeightsError as exc:
        raise WeightsError(f"{origin} {exc}") from None
    if not weights:
        raise WeightsError(f"{origin} holds no tensors (entries: {', '.join(map(str, list(state)[:8]))})")
    fitted, notes = fit_weights(model, weights, origin, first_conv)
    model.load_state_dict(fitted, strict=False)
    return notes


def describe(source: ModelSource, state: dict[str, Any], origin: str, notes: list[str]) -> str:
    """The log line of a weights load: which entry, from where, and what was adapted."""
    try:
        _, entry = checkpoint_entry(state, source.weights)
    except WeightsError:
        entry = None
    what = f"{entry} weights" if entry in ("teacher", "student") else "weights"
    return f"loaded {what} from {origin}" + (f": {'; '.join(notes)}" if notes else "")


def load_source(model: nn.Module, source: ModelSource, ctx: JobContext, backbone: str) -> None:
    """Load the weights `source` names into an already built `model` (nothing for random init)."""
    weights = read_source(source, ctx, backbone)
    if weights is None:
        return
    notes = load_weights(model, weights.state, source.weights, weights.origin, source.first_conv)
    ctx.log(describe(source, weights.state, weights.origin, notes))


def load_backbone(spec: BackboneSpec, source: ModelSource, ctx: JobContext) -> nn.Module:
    """Build the backbone and load the weights the spec names (random init needs no weights)."""
    return backbone_with(spec, read_source(source, ctx, spec.name), source, ctx)


def backbone_with(spec: BackboneSpec, weights: SourceWeights | None, source: ModelSource,
                  ctx: JobContext) -> nn.Module:
    """Build the backbone and load `weights`, what `read_source` read of `source` (None: random init).

    A bosun checkpoint records the kwargs its backbone was built with (image size, patch size...),
    a Hugging Face snapshot its `model_args`; they are the base, and the spec's own kwargs override them.
    The first convolution is fitted to the backbone's `in_chans` as `source.first_conv` says.
    """
    if weights is None:
        return build_backbone(spec)
    recorded = weights.recorded
    if recorded.get("name") == spec.name and isinstance(recorded.get("kwargs"), dict):
        spec = spec.model_copy(update={"kwargs": {**recorded["kwargs"], **spec.kwargs}})
    model = build_backbone(spec)
    notes = load_weights(model, weights.state, source.weights, weights.origin, source.first_conv)
    ctx.log(describe(source, weights.state, weights.origin, notes))
    return model
