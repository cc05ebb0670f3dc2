import numpy as np
import torch
from PIL import Image

from services.pretrain.pretrain_job import prepare, run
from shared.specs.pretrain import PretrainSpec
from tests.services.pretrain.helpers import TINY_RESNET, TINY_VIT, local

torch.set_num_threads(1)


def write_folder_dataset(data_root, n_per_class=8, size=20):
    """<data_root>/tiny/{train,val}/{horizontal,vertical}/*.png with striped images."""
    rng = np.random.default_rng(0)
    stripes = (np.arange(size) % 4 < 2).astype(np.float32)
    for split, n in (("train", n_per_class), ("val", n_per_class // 2)):
        for name, pattern in (("horizontal", stripes[:, None]), ("vertical", stripes[None, :])):
            folder = data_root / "tiny" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.broadcast_to(pattern, (size, size))[..., None] * 0.7
                                 + 0.3 * rng.random((size, size, 3)), 0, 1)
                Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"{i}.png")


def dino_spec(**fields):
    return PretrainSpec.model_validate({
        "method": "dino", "backbone": TINY_VIT, "amp": "none", "log_every": 1, "knn_every": 1, "knn_k": 3,
        "dataset": {"kind": "folder", "path": "tiny", "image_size": 16},
        "dino": {"epochs": 2, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0, "out_dim": 32,
                 "head_hidden_dim": 32, "head_bottleneck_dim": 16, "local_crops_number": 2},
        **fields})


def test_run_dino_on_a_folder_dataset(tmp_path):
    write_folder_dataset(tmp_path / "data")
    ctx = local(tmp_path / "job1", data_root=tmp_path / "data")
    result = run(dino_spec(), ctx)
    assert result["epochs"] == 2 and result["iterations"] == 4 and result["train_samples"] == 16
    assert sorted(ctx.metrics["knn_top1"]) == [2, 4]
    assert ctx.progress_log[-1] == (1.0, "done")
    artifact = torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=False)
    assert artifact["backbone"] == {"name": "test_vit", "kwargs": {"patch_size": 4, "img_size": 16,
                                                                    "dynamic_img_size": True}}


def test_later_job_starts_from_an_earlier_jobs_teacher(tmp_path):
    write_folder_dataset(tmp_path / "data")
    first = local(tmp_path / "job1", data_root=tmp_path / "data")
    run(dino_spec(knn_every=0), first)
    teacher = torch.load(first.artifact_path("checkpoint.pt"), weights_only=False)["teacher"]

    second = local(tmp_path / "job2", job_id=2, data_root=tmp_path / "data")
    spec = PretrainSpec.model_validate({
        "method": "supervised", "backbone": {"name": "test_vit", "kwargs": {"patch_size": 4, "dynamic_img_size": True}},
        "source": {"kind": "job", "job": 1}, "amp": "none", "knn_every": 0,
        "dataset": {"kind": "folder", "path": "tiny", "image_size": 16},
        "supervised": {"epochs": 1, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0}})
    data, method = prepare(spec, second)
    for name, value in method.student_backbone().state_dict().items():
        torch.testing.assert_close(value, teacher[name], msg=name)
    images, target = data.train[0]
    assert images.shape == (3, 16, 16) and target in (0, 1)


def test_simclr_run_gives_two_views_and_supervised_one(tmp_path):
    write_folder_dataset(tmp_path / "data")
    raw = {"backbone": TINY_RESNET, "amp": "none", "knn_every": 0,
           "dataset": {"kind": "folder", "path": "tiny", "image_size": 16}}
    options = {"epochs": 1, "batch_size_per_gpu": 8, "num_workers": 0, "warmup_epochs": 0}
    ctx = local(tmp_path / "job1", data_root=tmp_path / "data")
    data, _ = prepare(PretrainSpec.model_validate({**raw, "method": "simclr", "contrastive": options}), ctx)
    views, _ = data.train[3]
    assert len(views) == 2 and views[0].shape == (3, 16, 16) and not torch.equal(views[0], views[1])
    result = run(PretrainSpec.model_validate({**raw, "method": "supervised", "supervised": options}), ctx)
    assert result["method"] == "supervised" and np.isfinite(result["loss"])
    exported = torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=False)
    classifier = exported["classifier"]  # the trained head, so landscape jobs can score cross-entropy
    assert classifier["classes"] == list(data.train.classes)
    assert classifier["weight"].shape == (len(data.train.classes), result["embed_dim"])
