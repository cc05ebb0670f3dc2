"""A landscape reads its model as an evaluation does (`services.backbones.read_source`): here a
Hugging Face cache folder of RGB weights, adapted to a 1-channel (thermal) backbone by `first_conv`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from services.job_context import LocalContext
from services.landscape import landscape_job
from services.landscape.network import build_model
from services.landscape.surface import Surface
from shared.specs.landscape import LandscapeSpec
from tests.services.figure_checks import svg_text
from tests.services.weights_files import HF_REVISION, VIT, write_hf_cache, write_timm_pth

torch.set_num_threads(1)


def thermal_spec(hub: str, **source) -> LandscapeSpec:
    """A 1D 'dino' landscape of a 1-channel tiny ViT whose weights are the hub cache folder `hub`."""
    return LandscapeSpec.model_validate({
        "backbone": {"name": VIT, "kwargs": {"in_chans": 1}}, "source": {"kind": "file", "path": hub, **source},
        "dataset": {"kind": "synthetic-maritime", "image_size": 32}, "subset_size": 8, "batch_size": 4,
        "metric": "dino", "mode": "1d", "x": [-0.5, 0.5, 3], "tile_size": 3})


@pytest.fixture
def rgb(data_root, tmp_path) -> tuple[str, dict[str, torch.Tensor]]:
    """RGB weights of the tiny ViT in a hub cache folder below the data root: (its path there, the weights)."""
    hub = f"hubs/{tmp_path.name}"
    state = write_timm_pth(tmp_path / "staged.pth", seed=7)
    write_hf_cache(data_root / hub, state)
    return hub, state


@pytest.mark.parametrize("first_conv,expected", [("green", lambda w: w[:, 1:2]),
                                                  ("sum", lambda w: w.sum(dim=1, keepdim=True))])
def test_a_hugging_face_folder_serves_a_thermal_landscape(rgb, tmp_path, data_root, first_conv, expected) -> None:
    hub, rgb = rgb
    ctx = LocalContext(tmp_path / "job1", data_root=data_root)
    spec = thermal_spec(hub, first_conv=first_conv)
    result = landscape_job.run(spec, ctx)
    surface = Surface.from_npz(ctx.artifact_path(landscape_job.SURFACE))
    assert result["shape"] == [3] and np.isfinite(surface.loss).all()
    loaded = [line for line in ctx.logs if line.startswith(f"loaded weights from weights folder {hub}")]
    assert loaded and f"snapshot {HF_REVISION[:12]}" in loaded[0]
    assert f"patch_embed.proj.weight from 3 to 1 input channels ({first_conv})" in loaded[0]

    model = build_model(spec, spec.source, ctx, [])  # the origin: config.json's model_args, then in_chans 1
    assert model.patch_embed.grid_size == (4, 4) and model.patch_embed.proj.in_channels == 1
    torch.testing.assert_close(model.state_dict()["patch_embed.proj.weight"], expected(rgb["patch_embed.proj.weight"]))
    torch.testing.assert_close(model.state_dict()["blocks.0.attn.qkv.weight"], rgb["blocks.0.attn.qkv.weight"])
    title = " ".join(svg_text(ctx.artifact_path("loss_curve.svg").read_bytes()).split())
    assert hub in title and "epoch" not in title  # a hub snapshot does not say its epoch


def test_a_folder_of_another_backbone_is_refused(rgb, tmp_path, data_root) -> None:
    spec = thermal_spec(rgb[0])
    spec = spec.model_copy(update={"backbone": spec.backbone.model_copy(update={"name": "vit_small_patch16_224"})})
    with pytest.raises(ValueError, match="neither a Hugging Face snapshot"):
        landscape_job.run(spec, LocalContext(tmp_path / "job1", data_root=data_root))
