import numpy as np
import pytest
import timm
import torch

from services.job_context import JobStopped
from services.pretrain.methods import build_method
from services.pretrain.rng import seed_everything
from services.pretrain.trainer import PretrainData, precision_on, train
from tests.services.pretrain.helpers import MultiCrop, RecordingContext, StripesDataset, TwoViews, local, spec

torch.set_num_threads(1)


def data_for(s, n=16):
    transform = {"dino": MultiCrop(s.dino.local_crops_number) if s.dino else None,
                 "simclr": TwoViews(), "supcon": TwoViews(), "supervised": None}[s.method]
    return PretrainData(train=StripesDataset(n, transform), num_classes=2,
                        knn_train=StripesDataset(n, seed=1), knn_test=StripesDataset(8, seed=2))


def fit(s, ctx, n=16):
    seed_everything(0)
    method = build_method(s, num_classes=2, img_size=16)
    return train(s, ctx, data_for(s, n), method), method


def epoch_means(ctx, niter):
    losses = ctx.metrics["loss"]
    return [np.mean([losses[e * niter + i + 1] for i in range(niter)]) for e in range(len(losses) // niter)]


def test_dino_loss_falls_and_schedules_are_logged(tmp_path):
    s = spec("dino", options={"epochs": 6, "lr": 1.0, "teacher_temp": 0.04})
    ctx = local(tmp_path / "job1")
    result, _ = fit(s, ctx)
    means = epoch_means(ctx, 2)
    assert result["epochs"] == 6 and result["iterations"] == 12
    assert means[-1] < means[0]
    assert sorted(ctx.metrics) == ["images_per_s", "loss", "lr", "momentum", "teacher_temp", "wd"]
    assert list(ctx.metrics["loss"]) == list(range(1, 13))
    momentum = [ctx.metrics["momentum"][k] for k in range(1, 13)]
    assert momentum[0] == pytest.approx(0.9) and all(np.diff(momentum) > 0)
    wd = [ctx.metrics["wd"][k] for k in range(1, 13)]
    assert wd[0] == pytest.approx(0.04) and wd[-1] < 0.4 and all(np.diff(wd) > 0)
    assert ctx.progress_log[-1][0] == pytest.approx(1.0)


@pytest.mark.parametrize("method,options", [
    ("simclr", {"temperature": 0.5, "optimizer": "adamw", "lr": 1.0}),
    ("supcon", {"temperature": 0.5, "optimizer": "adamw", "lr": 1.0}),
    ("supervised", {"label_smoothing": 0.1}),
    ("supervised", {"mixup_alpha": 0.2, "cutmix_alpha": 1.0, "sam_rho": 0.05}),
])
def test_other_methods_loss_falls(tmp_path, method, options):
    s = spec(method, options={"epochs": 4, **options})
    ctx = local(tmp_path / "job1")
    result, _ = fit(s, ctx)
    means = epoch_means(ctx, 2)
    assert means[-1] < means[0]
    assert result["method"] == method and "momentum" not in ctx.metrics


def test_stop_and_resume_is_exact(tmp_path):
    s = spec("dino", options={"epochs": 3}, checkpoint_every=2, knn_every=1)
    uninterrupted = RecordingContext(tmp_path / "a")
    expected, expected_method = fit(s, uninterrupted)

    stopped = RecordingContext(tmp_path / "b", stop_after_checks=3)
    with pytest.raises(JobStopped):
        fit(s, stopped)
    assert stopped.load_latest_checkpoint()["epoch"] == 1 and stopped.load_latest_checkpoint()["iteration"] == 1
    resumed = RecordingContext(tmp_path / "b")
    result, method = fit(s, resumed)

    assert result["epochs"] == expected["epochs"] == 3
    calls = stopped.metric_calls + resumed.metric_calls
    assert len(calls) == len(set(calls)), "a metric step was logged twice"
    assert sorted(calls) == sorted(uninterrupted.metric_calls)
    for name in ("loss", "knn_top1", "teacher_temp", "lr"):
        merged = {**stopped.metrics.get(name, {}), **resumed.metrics[name]}
        assert merged == pytest.approx(uninterrupted.metrics[name]), name
    for a, b in zip(expected_method.state_dict().values(), method.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_from_epoch_checkpoint_after_a_crash(tmp_path):
    s = spec("supervised", options={"epochs": 3, "mixup_alpha": 0.2}, checkpoint_every=1)
    expected, expected_method = fit(s, local(tmp_path / "a"))
    first = local(tmp_path / "b")
    fit(spec("supervised", options={"epochs": 3, "mixup_alpha": 0.2}), first)
    # A crashed attempt: only the checkpoint of epoch 1 survives.
    checkpoints = tmp_path / "b" / "checkpoints"
    for step in (2, 3):
        (checkpoints / f"{step}.pt").unlink()
    (checkpoints / "latest").write_text('{"step": 1, "file": "1.pt"}')
    result, method = fit(s, local(tmp_path / "b"))
    assert result["loss"] == pytest.approx(expected["loss"], abs=0)
    for a, b in zip(expected_method.state_dict().values(), method.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_non_finite_loss_raises_and_keeps_last_checkpoint(tmp_path):
    s = spec("simclr", options={"epochs": 3})
    ctx = local(tmp_path / "job1")
    seed_everything(0)
    method = build_method(s, num_classes=2, img_size=16)
    calls = {"n": 0}
    original = method.loss

    def poisoned(inputs, epoch):
        calls["n"] += 1
        loss = original(inputs, epoch)
        return loss * float("nan") if calls["n"] > 2 else loss

    method.loss = poisoned
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1, iteration 2"):
        train(s, ctx, data_for(s), method)
    latest = ctx.load_latest_checkpoint()
    assert (latest["epoch"], latest["iteration"]) == (1, 0)
    assert np.isfinite(latest["last_loss"])


def test_knn_monitor_and_exported_checkpoint(tmp_path):
    s = spec("dino", options={"epochs": 2}, knn_every=1, knn_k=3)
    ctx = local(tmp_path / "job1")
    result, method = fit(s, ctx)
    assert sorted(ctx.metrics["knn_top1"]) == [2, 4]
    assert all(0.0 <= v <= 1.0 for v in ctx.metrics["knn_top1"].values())
    assert result["knn_top1"] == ctx.metrics["knn_top1"][4]

    artifact = torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=False)
    assert artifact["backbone"]["name"] == "test_vit"
    assert "drop_path_rate" not in artifact["backbone"]["kwargs"]
    model = timm.create_model("test_vit", num_classes=0, **artifact["backbone"]["kwargs"])
    model.load_state_dict(artifact["teacher"])
    x = torch.randn(2, 3, 16, 16)
    model.eval()
    method.teacher.backbone.eval()
    torch.testing.assert_close(model(x), method.teacher.backbone(x))
    assert not torch.equal(artifact["student"]["cls_token"], artifact["teacher"]["cls_token"])


def test_dataset_smaller_than_a_batch_is_refused(tmp_path):
    s = spec("simclr")
    with pytest.raises(ValueError, match="fewer than batch_size_per_gpu=8"):
        train(s, local(tmp_path / "job1"), data_for(s, n=5), build_method(s, num_classes=2, img_size=16))


def test_checkpoint_of_another_method_is_refused(tmp_path):
    ctx = local(tmp_path / "job1")
    fit(spec("simclr", options={"epochs": 1}), ctx)
    with pytest.raises(ValueError, match="not a 'supcon' pretraining checkpoint"):
        fit(spec("supcon", options={"epochs": 1}), ctx)


def test_bf16_runs_on_the_cpu_and_checkpoints_no_scaler(tmp_path):
    ctx = local(tmp_path / "job1")
    result, _ = fit(spec("dino", options={"epochs": 1}, amp="bf16"), ctx)
    assert np.isfinite(result["loss"]) and result["precision"] == "bf16"
    assert ctx.load_latest_checkpoint()["scaler"] == {}  # loss scaling is fp16's alone


def test_fp16_is_for_cuda_a_cpu_run_trains_in_fp32_and_says_so(tmp_path):
    s = spec("dino", options={"epochs": 1}, amp=None)  # use_fp16 defaults to true, as the README's recipe leaves it
    assert s.resolved_amp == "fp16"
    ctx = local(tmp_path / "job1")
    seen = []
    real = torch.autocast

    def recording(*args, **kwargs):
        seen.append((kwargs.get("dtype"), kwargs.get("enabled")))
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "autocast", recording)
        result, _ = fit(s, ctx)
    assert np.isfinite(result["loss"]) and result["precision"] == "fp32"
    assert seen and all(enabled is False for _, enabled in seen), seen  # no half-precision autocast on the CPU
    assert any("fp16 is for CUDA: on cpu this run trains in fp32" in line for line in ctx.logs), ctx.logs
    assert ctx.load_latest_checkpoint()["scaler"] == {}
    assert precision_on("fp16", "cuda") == "fp16" and precision_on("bf16", "cpu") == "bf16"


def test_a_checkpoint_with_a_loss_scale_resumes_where_no_scaling_runs(tmp_path):
    """A run re-queued from a GPU (fp16, scaler state) to a CPU worker (fp32) resumes its checkpoint."""
    s = spec("dino", options={"epochs": 2}, amp="bf16")
    ctx = local(tmp_path / "job1", stop_after_checks=2)
    with pytest.raises(JobStopped):
        fit(s, ctx)
    state = ctx.load_latest_checkpoint()
    state["scaler"] = {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
                       "_growth_tracker": 0}
    ctx.save_checkpoint(state, step=state["iteration"])
    result, _ = fit(s, local(tmp_path / "job1"))
    assert np.isfinite(result["loss"]) and result["epochs"] == 2


def test_a_checkpoint_without_a_loss_scale_resumes_under_fp16_scaling(tmp_path):
    """A run re-queued from a CPU worker (fp32, empty scaler state) to a GPU (fp16 scaling) resumes its
    checkpoint. The GPU's decision is stood in on the CPU: `precision_on` keeps fp16, so the scaler is on."""
    ctx = local(tmp_path / "job1", stop_after_checks=2)
    with pytest.raises(JobStopped):
        fit(spec("dino", options={"epochs": 2}, amp="fp16"), ctx)
    assert ctx.load_latest_checkpoint()["scaler"] == {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("services.pretrain.trainer.precision_on", lambda amp, device_type: amp)
        result, _ = fit(spec("dino", options={"epochs": 2}, amp="fp16"), local(tmp_path / "job1"))
    assert np.isfinite(result["loss"]) and result["epochs"] == 2 and result["precision"] == "fp16"
