"""Pretrained weights from the NAS: DINO checkpoints, timm `.pth`, `.safetensors` and Hugging Face cache
folders load into timm backbones; what does not fit fails in one line naming the keys; 3-channel
weights serve 1-channel (thermal) backbones by timm's rule or one colour."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import timm
import torch
from pydantic import ValidationError

from services.backbones import WeightsError, adapt_first_conv, fit_weights, load_backbone
from services.job_context import LocalContext, load_torch
from shared.specs.common import BackboneSpec, ModelSource
from tests.services.weights_files import (
    HF_REVISION,
    VIT,
    VIT_KWARGS,
    tiny_vit,
    write_dino_checkpoint,
    write_hf_cache,
    write_timm_pth,
)

torch.set_num_threads(1)
SPEC = BackboneSpec(name=VIT, kwargs=VIT_KWARGS)


@pytest.fixture
def ctx(tmp_path: Path) -> LocalContext:
    (tmp_path / "data").mkdir()
    return LocalContext(tmp_path / "job", data_root=tmp_path / "data")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading weights never opens a connection (no hub, no download)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a weights load tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def assert_same_weights(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert set(state) <= set(expected)
    for name, value in state.items():
        torch.testing.assert_close(value, expected[name], msg=name)


def file_source(path: str, **fields: object) -> ModelSource:
    return ModelSource.model_validate({"kind": "file", "path": path, **fields})


def test_official_dino_checkpoint_gives_its_teacher_or_its_student(ctx: LocalContext) -> None:
    teacher, student = tiny_vit(1), tiny_vit(2)
    write_dino_checkpoint(ctx.data_root / "dino" / "full_checkpoint.pth", teacher, student)
    model = load_backbone(SPEC, file_source("dino/full_checkpoint.pth"), ctx)
    assert_same_weights(model, teacher.state_dict())
    assert ctx.logs[-1] == "loaded teacher weights from weights file dino/full_checkpoint.pth: 6 head weights dropped"
    model = load_backbone(SPEC, file_source("dino/full_checkpoint.pth", weights="student"), ctx)
    assert_same_weights(model, student.state_dict())


def test_dino_checkpoint_args_come_back_as_a_plain_dict(ctx: LocalContext) -> None:
    path = write_dino_checkpoint(ctx.data_root / "dino.pth", tiny_vit(1), tiny_vit(2))
    state = load_torch(path)
    assert state["args"] == {"arch": "vit_tiny", "patch_size": 8, "out_dim": 32, "global_crops_scale": (0.4, 1.0)}


def test_dino_backbone_only_file_loads(ctx: LocalContext) -> None:
    """The released `dino_*_pretrain.pth` files hold the teacher backbone's plain keys."""
    teacher = tiny_vit(4)
    torch.save(teacher.state_dict(), ctx.data_root / "dino_vittiny8_pretrain.pth")
    model = load_backbone(SPEC, file_source("dino_vittiny8_pretrain.pth"), ctx)
    assert_same_weights(model, teacher.state_dict())
    assert ctx.logs[-1] == "loaded weights from weights file dino_vittiny8_pretrain.pth"


def test_timm_pth_loads_without_its_classifier(ctx: LocalContext) -> None:
    expected = write_timm_pth(ctx.data_root / "timm" / "vit_tiny.pth")
    assert "head.weight" in expected
    model = load_backbone(SPEC, file_source("timm/vit_tiny.pth"), ctx)
    assert_same_weights(model, expected)
    assert "2 head weights dropped" in ctx.logs[-1]


def test_timm_training_checkpoint_takes_its_state_dict(ctx: LocalContext) -> None:
    import argparse

    expected = tiny_vit(5).state_dict()
    torch.save({"epoch": 3, "arch": VIT, "state_dict": {f"module.{k}": v for k, v in expected.items()},
                "args": argparse.Namespace(model=VIT, lr=0.1)}, ctx.data_root / "train_ckpt.pth.tar")
    assert_same_weights(load_backbone(SPEC, file_source("train_ckpt.pth.tar"), ctx), expected)


@pytest.mark.parametrize("name", ["vit.safetensors", "vit.bin"])
def test_safetensors_file_loads_by_name_or_by_content(ctx: LocalContext, name: str) -> None:
    from safetensors.torch import save_file

    expected = tiny_vit(6).state_dict()
    save_file(expected, str(ctx.data_root / name))
    assert_same_weights(load_backbone(SPEC, file_source(name), ctx), expected)


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin"])
@pytest.mark.parametrize("where", ["cache", "repo", "snapshot"])
def test_hugging_face_cache_folder_loads_from_its_snapshot(ctx: LocalContext, filename: str, where: str) -> None:
    expected = write_timm_pth(ctx.data_root / "staged.pth", seed=7)
    repo = write_hf_cache(ctx.data_root / "hf" / "hub", expected, filename=filename)
    path = {"cache": "hf/hub", "repo": f"hf/hub/{repo.name}", "snapshot": f"hf/hub/{repo.name}/snapshots/{HF_REVISION}"}
    model = load_backbone(BackboneSpec(name=VIT), file_source(path[where]), ctx)
    assert model.patch_embed.grid_size == (4, 4)  # config.json's model_args (img_size 32, patch 8) are the base
    assert_same_weights(model, expected)
    assert f"({filename} of snapshot {HF_REVISION[:12]})" in ctx.logs[-1]


def test_hugging_face_revision_names_a_ref_or_a_snapshot(ctx: LocalContext) -> None:
    expected = write_timm_pth(ctx.data_root / "staged.pth", seed=7)
    repo = write_hf_cache(ctx.data_root / "hub", expected)
    (repo / "refs" / "v1").write_text(HF_REVISION)
    for revision in ("v1", HF_REVISION):
        assert_same_weights(load_backbone(SPEC, file_source("hub", revision=revision), ctx), expected)
    with pytest.raises(WeightsError, match=f"no snapshot 'deadbeef' \\(snapshots: {HF_REVISION}\\)"):
        load_backbone(SPEC, file_source("hub", revision="deadbeef"), ctx)
    with pytest.raises(ValidationError, match="revision applies to kind 'file'"):
        ModelSource(kind="job", job=1, revision="main")


def test_hugging_face_cache_of_another_architecture_is_refused(ctx: LocalContext) -> None:
    expected = write_timm_pth(ctx.data_root / "staged.pth")
    write_hf_cache(ctx.data_root / "hub", expected, architecture="vit_small_patch16_224")
    with pytest.raises(WeightsError, match="config.json names backbone 'vit_small_patch16_224', the spec 'vit_tiny"):
        load_backbone(SPEC, file_source("hub"), ctx)


def test_hugging_face_cache_with_two_tags_asks_for_one(ctx: LocalContext) -> None:
    expected = write_timm_pth(ctx.data_root / "staged.pth")
    write_hf_cache(ctx.data_root / "hub", expected, tag="augreg_in21k")
    write_hf_cache(ctx.data_root / "hub", expected, tag="augreg_in1k")
    with pytest.raises(WeightsError, match=r"several \(models--timm--vit_tiny_patch16_224.augreg_in1k, .*name one"):
        load_backbone(SPEC, file_source("hub"), ctx)


def test_hugging_face_link_leaving_the_data_root_is_refused(ctx: LocalContext, tmp_path: Path) -> None:
    expected = write_timm_pth(tmp_path / "staged.pth")
    repo = write_hf_cache(tmp_path / "elsewhere", expected)
    (ctx.data_root / "hub").symlink_to(repo)  # the folder itself may be a link; its files must stay inside
    with pytest.raises(WeightsError, match="model.safetensors leads outside the data root"):
        load_backbone(SPEC, file_source("hub"), ctx)


def test_mismatched_weights_fail_in_one_line_naming_the_keys(ctx: LocalContext) -> None:
    state = tiny_vit(1).state_dict()
    for key in ("blocks.11.norm1.weight", "blocks.11.norm1.bias"):
        del state[key]
    state["extra.weight"] = torch.zeros(3)
    state["blocks.0.mlp.fc1.weight"] = torch.zeros(100, 192)
    torch.save(state, ctx.data_root / "bad.pth")
    with pytest.raises(WeightsError) as info:
        load_backbone(SPEC, file_source("bad.pth"), ctx)
    message = str(info.value)
    assert "\n" not in message
    assert message == ("weights file bad.pth does not fit backbone vit_tiny_patch16_224: "
                       "2 missing (blocks.11.norm1.weight, blocks.11.norm1.bias); 1 unexpected (extra.weight); "
                       "1 of another shape (weights vs backbone: blocks.0.mlp.fc1.weight [100, 192] vs [768, 192])")


def test_weights_of_another_network_show_a_few_keys_and_the_counts(ctx: LocalContext) -> None:
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), ctx.data_root / "resnet.pth")
    with pytest.raises(WeightsError) as info:
        load_backbone(SPEC, file_source("resnet.pth"), ctx)
    message = str(info.value)
    assert "\n" not in message and len(message) < 800
    assert "150 missing (cls_token, pos_embed, patch_embed.proj.weight, patch_embed.proj.bias, ...)" in message
    assert "120 unexpected (conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, ...)" in message


def test_student_asked_of_a_teacher_only_file_names_the_fix(ctx: LocalContext) -> None:
    torch.save({"teacher": tiny_vit(1).state_dict()}, ctx.data_root / "t.pth")
    with pytest.raises(WeightsError, match="weights file t.pth has no 'student' weights, only 'teacher': set "
                                           "source.weights to 'teacher'"):
        load_backbone(SPEC, file_source("t.pth", weights="student"), ctx)


@pytest.mark.parametrize("name,first_conv_key", [("resnet18", "conv1.weight"), (VIT, "patch_embed.proj.weight")])
def test_in_chans_1_sums_the_rgb_kernels_as_timm_does(ctx: LocalContext, name: str, first_conv_key: str) -> None:
    from timm.models import adapt_input_conv

    kwargs = VIT_KWARGS if name == VIT else {}
    rgb = timm.create_model(name, num_classes=0, **kwargs).state_dict()
    torch.save(rgb, ctx.data_root / "rgb.pth")
    model = load_backbone(BackboneSpec(name=name, kwargs={**kwargs, "in_chans": 1}), file_source("rgb.pth"), ctx)
    adapted = model.state_dict()[first_conv_key]
    assert adapted.shape[1] == 1
    torch.testing.assert_close(adapted, adapt_input_conv(1, rgb[first_conv_key]))
    torch.testing.assert_close(adapted, rgb[first_conv_key].sum(dim=1, keepdim=True))
    assert f"{first_conv_key} from 3 to 1 input channels (sum)" in ctx.logs[-1]
    for key, value in rgb.items():
        if key != first_conv_key:
            torch.testing.assert_close(model.state_dict()[key], value, msg=key)


@pytest.mark.parametrize("colour,channel", [("red", 0), ("green", 1), ("blue", 2)])
def test_one_colour_of_the_weights_serves_a_1_channel_backbone(ctx: LocalContext, colour: str, channel: int) -> None:
    rgb = tiny_vit(1).state_dict()
    torch.save(rgb, ctx.data_root / "rgb.pth")
    spec = BackboneSpec(name=VIT, kwargs={**VIT_KWARGS, "in_chans": 1})
    model = load_backbone(spec, file_source("rgb.pth", first_conv=colour), ctx)
    torch.testing.assert_close(model.patch_embed.proj.weight, rgb["patch_embed.proj.weight"][:, channel:channel + 1])


def test_in_chans_above_3_follow_timm_and_a_colour_does_not_apply(ctx: LocalContext) -> None:
    weight = torch.randn(8, 3, 3, 3)
    torch.testing.assert_close(adapt_first_conv(weight, 4, "sum"), torch.cat([weight, weight[:, :1]], 1) * 3 / 4)
    model = timm.create_model("resnet18", num_classes=0, in_chans=2)
    weights = timm.create_model("resnet18", num_classes=0).state_dict()
    with pytest.raises(WeightsError, match="first_conv 'green' picks one colour of 3-channel weights for a 1-channel "
                                           "backbone; these weights have 3 channels, the backbone 2"):
        fit_weights(model, weights, "weights file rgb.pth", "green")


def test_one_channel_weights_do_not_widen_to_three(ctx: LocalContext) -> None:
    grey = timm.create_model("resnet18", num_classes=0, in_chans=1).state_dict()
    with pytest.raises(WeightsError, match=r"conv1.weight \[64, 1, 7, 7\] vs \[64, 3, 7, 7\]"):
        fit_weights(timm.create_model("resnet18", num_classes=0), grey, "weights file grey.pth")


def test_position_embeddings_are_resampled_to_the_patch_grid(ctx: LocalContext) -> None:
    from timm.layers import resample_abs_pos_embed

    small = tiny_vit(1)
    torch.save(small.state_dict(), ctx.data_root / "vit32.pth")
    spec = BackboneSpec(name=VIT, kwargs={"img_size": 64, "patch_size": 8})
    model = load_backbone(spec, file_source("vit32.pth"), ctx)
    expected = resample_abs_pos_embed(small.pos_embed.detach(), new_size=[8, 8], old_size=[4, 4], num_prefix_tokens=1)
    torch.testing.assert_close(model.pos_embed.detach(), expected)
    assert "pos_embed resampled from 17 to 65 tokens" in ctx.logs[-1]
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 192)


def test_a_folder_without_weights_says_what_it_lacks(ctx: LocalContext) -> None:
    (ctx.data_root / "images" / "train").mkdir(parents=True)
    with pytest.raises(WeightsError, match="weights folder images: neither a Hugging Face snapshot or repository "
                                           "folder nor a cache folder holding models--timm--vit_tiny_patch16_224"):
        load_backbone(SPEC, file_source("images"), ctx)
    (ctx.data_root / "hub" / f"models--timm--{VIT}" / "snapshots").mkdir(parents=True)
    with pytest.raises(WeightsError, match=f"weights folder hub/models--timm--{VIT}: no refs/main and 0 snapshots"):
        load_backbone(SPEC, file_source("hub"), ctx)
