"""The evaluate job end to end on the synthetic maritime set, with a tiny ViT and every protocol."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from services.data.subset import stratified_subset
from services.evaluate.corruption_scores import RobustnessTable
from services.evaluate.evaluation import Progress, headline, run
from services.evaluate.figures import FigureLabel, confusion_figure
from services.evaluate.knn_classifier import knn_scores
from services.evaluate.protocols.knn import headline_k
from services.evaluate.registry import ProtocolResult, run_order
from services.evaluate.scores import wilson_interval
from services.job_context import JobStopped, LocalContext
from shared.specs.evaluate import EvaluateSpec
from tests.services.figure_checks import assert_figure, svg_text

from .conftest import png_size

TINY_VIT = {"name": "vit_tiny_patch16_224", "kwargs": {"img_size": 32, "patch_size": 8}}
DATASET = {"kind": "synthetic-maritime", "image_size": 32, "max_per_split": 30}
ROBUSTNESS = {"corruptions": ["gaussian_noise", "contrast"], "severities": [1, 5], "max_images": 12}
ALL = ["knn", "linear", "robustness", "tsne", "attention", "gradcam"]


def evaluate_spec(**changes: Any) -> EvaluateSpec:
    raw = {"backbone": TINY_VIT, "dataset": DATASET, "protocols": ALL, "knn": {"k": [5, 20]},
           "linear": {"epochs": 4, "lrs": [0.05, 0.5, 5.0], "n_last_blocks": 2, "avgpool": True, "val_split": "val"},
           "robustness": ROBUSTNESS, "tsne": {"perplexity": 5, "max_points": 20, "max_iter": 250},
           "attention": {"n_images": 2}, "gradcam": {"n_images": 2}}
    return EvaluateSpec.model_validate({**raw, **changes})


def context(root: Path, job_id: int, data_root: Path, **kw: Any) -> LocalContext:
    (root / f"job{job_id}").mkdir(parents=True, exist_ok=True)
    return LocalContext(root / f"job{job_id}", job_id=job_id, data_root=data_root, **kw)


@pytest.fixture(scope="module")
def jobs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs")


@pytest.fixture(scope="module")
def full(jobs_root: Path, data_root: Path) -> tuple[dict[str, Any], LocalContext]:
    torch.set_num_threads(1)
    ctx = context(jobs_root, 1, data_root)
    return run(evaluate_spec(), ctx), ctx


class Numbers(ProtocolResult):
    def __init__(self, **numbers: float) -> None:
        self.numbers = numbers

    def headline(self) -> dict[str, float]:
        return self.numbers


def test_headline_gathers_the_results_numbers_in_run_order() -> None:
    assert list(headline([Numbers(b=2.0), ProtocolResult(), Numbers(a=1.0)]).items()) == [("b", 2.0), ("a", 1.0)]


def test_progress_spans_follow_the_weights() -> None:
    class Ctx:
        def __init__(self) -> None:
            self.seen: list[tuple[float, str]] = []

        def progress(self, fraction: float, message: str) -> None:
            self.seen.append((fraction, message))

    ctx = Ctx()
    progress = Progress(ctx, run_order(["knn", "robustness"]))  # type: ignore[arg-type]
    assert progress.spans == {"knn": pytest.approx((0.3, 0.14)), "robustness": pytest.approx((0.44, 0.56))}
    progress.protocol("robustness")(2.0, "past the end")
    progress.features(5, 10)
    assert ctx.seen == [(pytest.approx(1.0), "robustness: past the end"), (pytest.approx(0.15), "features 5/10")]


FIGURES = ("knn_confusion.png", "linear_confusion.png", "robustness.png", "tsne.png", "attention.png", "gradcam.png")


def assert_print_artifacts(ctx: LocalContext, name: str) -> None:
    """The figure `name` is a 300 dpi PNG with an SVG sibling whose title names the job."""
    from PIL import Image

    png = ctx.artifact_path(name).read_bytes()
    assert min(png_size(png)) > 300, name
    assert Image.open(io.BytesIO(png)).info["dpi"] == pytest.approx((300, 300), abs=0.1), name
    assert f"evaluate job {ctx.job_id}" in svg_text(ctx.artifact_path(name[:-4] + ".svg").read_bytes()), name


def test_every_protocol_writes_its_artifacts(full: tuple[dict[str, Any], LocalContext]) -> None:
    result, ctx = full
    assert result["protocols"] == ALL and result["classes"][0] == "sailing_boat"
    assert list(result) == ["backbone", "features", "source", "weights_from", "weights_epoch", "classes", "n_train",
                            "n_test", "protocols", *ALL, "headline", "headline_intervals"]
    for name in FIGURES:
        assert_print_artifacts(ctx, name)
    # attention: one row per image, image + mask + one map per head (ViT-Tiny has 3 heads)
    assert "head 2" in svg_text(ctx.artifact_path("attention.svg").read_bytes())
    confusion = confusion_figure(np.array(result["knn"]["confusion_matrix"]), result["classes"], title="kNN",
                                 label=FigureLabel("evaluate", ctx.job_id))
    assert_figure(confusion, "kNN", f"evaluate job {ctx.job_id}", *result["classes"])
    assert json.loads(ctx.artifact_path("result.json").read_text()) == json.loads(json.dumps(result))
    tsne = np.load(ctx.artifact_path("tsne.npz"))
    assert tsne["coords"].shape == (20, 2) and np.isfinite(tsne["coords"]).all()
    assert sorted(np.unique(tsne["labels"])) == list(range(6)) and list(tsne["classes"]) == result["classes"]


def test_headline_holds_the_main_numbers(full: tuple[dict[str, Any], LocalContext]) -> None:
    result, _ = full
    headline, knn, linear = result["headline"], result["knn"], result["linear"]
    assert headline["knn_top1"] == knn["top1"] == knn["per_k"]["20"]["top1"] and knn["k"] == 20
    assert headline["linear_top1"] == linear["top1"]
    assert headline["linear_best_val_top1"] == max(h["top1"] for h in linear["history"])
    assert linear["history"][linear["best_epoch"] - 1]["top1"] == linear["best_val"]["top1"]
    assert headline["robustness_mean_accuracy"] == pytest.approx(result["robustness"]["mean_accuracy"] / 100)
    assert "mce" not in headline and result["robustness"].get("mce") is None  # no baseline job
    assert all(0.0 <= v <= 1.0 for v in headline.values())
    assert linear["val_split"] == "val" and linear["feature_dim"] == 3 * 192  # 2 CLS tokens + patch average
    assert result["attention"]["heads"] == 3 and result["gradcam"]["target"] == "class"
    robust = result["robustness"]
    assert robust["classifier"] == "linear" and robust["parameter_set"] == "cifar10c"  # auto at 32 px
    assert robust["source"] == "on-the-fly (CIFAR-10-C-style, parameters: cifar10c)"


def test_every_accuracy_carries_n_and_its_wilson_interval(full: tuple[dict[str, Any], LocalContext]) -> None:
    result, _ = full
    knn, linear, intervals = result["knn"], result["linear"], result["headline_intervals"]
    n_test = result["n_test"]
    assert knn["n"] == linear["n"] == n_test
    for section in (knn, linear, *knn["per_k"].values()):
        for name in ("top1", "top5"):
            assert section[f"{name}_ci"] == wilson_interval(round(section[name] * n_test), n_test)
            assert section[f"{name}_ci"][0] <= section[name] <= section[f"{name}_ci"][1]
    n_val = linear["best_val"]["n"]
    assert linear["best_val"]["top1_ci"] == wilson_interval(round(linear["best_val"]["top1"] * n_val), n_val)
    assert list(intervals) == ["knn_top1", "knn_top5", "linear_top1", "linear_top5", "linear_best_val_top1"]
    assert intervals["knn_top1"] == {"low": knn["top1_ci"][0], "high": knn["top1_ci"][1], "n": n_test}
    assert intervals["linear_best_val_top1"]["n"] == n_val


def test_the_head_best_on_val_is_reported_and_used(full: tuple[dict[str, Any], LocalContext]) -> None:
    result, ctx = full
    linear = result["linear"]
    search = {r["lr"]: r for r in linear["lr_search"]}
    assert list(search) == [0.05, 0.5, 5.0] and linear["lr"] in search
    assert search[linear["lr"]]["val_top1"] == max(r["val_top1"] for r in linear["lr_search"])
    assert linear["history"][-1]["top1"] == search[linear["lr"]]["val_top1"]
    assert all(isinstance(w, str) for w in linear["warnings"])
    saved = torch.load(io.BytesIO(ctx.artifact_path("linear_head.pt").read_bytes()), weights_only=True)
    assert saved["lr"] == linear["lr"] and saved["state_dict"]["weight"].shape == (6, linear["feature_dim"])
    assert any(line.startswith("linear: top-1") and f"at lr {linear['lr']:g} of 3" in line for line in ctx.logs)


def test_without_a_val_split_the_probe_holds_out_part_of_train(jobs_root: Path, data_root: Path) -> None:
    ctx = context(jobs_root, 8, data_root)
    result = run(evaluate_spec(protocols=["knn", "linear"], linear={"epochs": 2, "lrs": [0.1, 1.0]}), ctx)
    linear = result["linear"]
    held = round(0.1 * result["n_train"])
    assert linear["val_split"] == f"{held} images of train held out (10%)" and linear["best_val"]["n"] == held
    assert linear["n"] == result["n_test"]


def test_knn_section_matches_the_stored_features(full: tuple[dict[str, Any], LocalContext]) -> None:
    result, ctx = full
    data = np.load(ctx.artifact_path("features.npz"))
    scores = knn_scores(torch.from_numpy(data["train_features"]), torch.from_numpy(data["train_labels"]),
                        torch.from_numpy(data["test_features"]), k=5, num_classes=6)
    expected = float((scores.argmax(1).numpy() == data["test_labels"]).mean())
    assert result["knn"]["per_k"]["5"]["top1"] == pytest.approx(expected)
    assert np.array(result["knn"]["confusion_matrix"]).sum() == result["n_test"] == len(data["test_labels"])
    assert ctx.metrics["knn_top1"] == {5: result["knn"]["per_k"]["5"]["top1"], 20: result["knn"]["top1"]}
    assert sorted(ctx.metrics["linear_loss"]) == [1, 2, 3, 4]


def test_progress_rises_through_every_protocol(full: tuple[dict[str, Any], LocalContext]) -> None:
    _, ctx = full
    fractions = [f for f, _ in ctx.progress_log]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = " ".join(m for _, m in ctx.progress_log)
    for name in ALL:
        assert f"{name}: done" in messages
    assert "robustness: 4/4 corruption cells" in messages


def test_baseline_job_normalizes_corruption_error(full: tuple[dict[str, Any], LocalContext], jobs_root: Path,
                                                  data_root: Path) -> None:
    base_ctx = full[1]
    ctx = context(jobs_root, 2, data_root)
    spec = evaluate_spec(protocols=["knn", "robustness"], robustness={**ROBUSTNESS, "baseline_job": 1})
    result = run(spec, ctx)
    robust = result["robustness"]
    assert robust["classifier"] == "knn (k=20)" and robust["baseline_job"] == 1
    table = RobustnessTable.from_dict(json.loads(ctx.artifact_path("robustness_table.json").read_text())["table"])
    base = RobustnessTable.from_dict(json.loads(base_ctx.artifact_path("robustness_table.json").read_text())["table"])
    error, base_error = 1 - table.accuracy, 1 - base.accuracy
    ces = [100 * error[i].sum() / base_error[i].sum() for i in range(2) if base_error[i].sum() > 0]
    assert robust["mce"] == pytest.approx(np.mean(ces)) and result["headline"]["mce"] == robust["mce"]
    # clean accuracy: kNN of the stored test features of the same stratified subset
    data = np.load(ctx.artifact_path("features.npz"))
    subset = stratified_subset(data["test_labels"], 12, seed=0)
    scores = knn_scores(torch.from_numpy(data["train_features"]), torch.from_numpy(data["train_labels"]),
                        torch.from_numpy(data["test_features"][subset]), k=headline_k([5, 20]), num_classes=6)
    expected = float((scores.argmax(1).numpy() == data["test_labels"][subset]).mean())
    assert table.clean_accuracy == pytest.approx(expected)


def test_missing_baseline_fails_before_features(jobs_root: Path, data_root: Path) -> None:
    ctx = context(jobs_root, 3, data_root)
    spec = evaluate_spec(protocols=["robustness"], robustness={**ROBUSTNESS, "baseline_job": 99})
    with pytest.raises(ValueError, match=r"robustness.baseline_job: job 99 has no robustness_table.json"):
        run(spec, ctx)
    assert not ctx.artifact_path("features.npz").exists()


def test_baseline_of_other_corruption_parameters_fails_before_features(full: tuple[dict[str, Any], LocalContext],
                                                                       jobs_root: Path, data_root: Path) -> None:
    ctx = context(jobs_root, 7, data_root)
    spec = evaluate_spec(protocols=["robustness"],
                         robustness={**ROBUSTNESS, "baseline_job": 1, "parameter_set": "imagenetc"})
    with pytest.raises(ValueError, match=r"job 1's robustness table is of on-the-fly \(CIFAR-10-C-style, "
                                         r"parameters: cifar10c\), this job's would be of .*imagenetc"):
        run(spec, ctx)
    assert not ctx.artifact_path("features.npz").exists()


def test_attention_on_a_cnn_fails_before_features(jobs_root: Path, data_root: Path) -> None:
    ctx = context(jobs_root, 4, data_root)
    spec = evaluate_spec(backbone={"name": "resnet18"}, protocols=["knn", "attention"])
    with pytest.raises(ValueError, match=r"'attention' needs a ViT backbone.*resnet18 is a ResNet"):
        run(spec, ctx)
    assert not ctx.artifact_path("features.npz").exists()


def test_stop_request_ends_the_job_between_protocols(jobs_root: Path, data_root: Path) -> None:
    # one batch per split: checks 1 and 2 pass during feature extraction, the third precedes kNN
    ctx = context(jobs_root, 5, data_root, stop_after_checks=2)
    with pytest.raises(JobStopped, match="before the knn protocol"):
        run(evaluate_spec(protocols=["knn", "tsne"]), ctx)
    assert not ctx.artifact_path("result.json").exists()


@pytest.mark.parametrize(("changes", "loc", "message"), [
    ({"protocols": ["knn"], "gradcam": {"target": "class"}}, ("gradcam",), "add 'linear' to protocols"),
    ({"protocols": ["robustness"], "robustness": {"classifier": "linear"}}, ("robustness",), "needs 'linear'"),
    ({"robustness": {"cifar10c_path": "CIFAR-10-C"}}, ("robustness",), "needs dataset kind 'cifar10'"),
    ({"robustness": {"corruptions": ["speckle_noise"]}}, ("robustness",), "unknown for on-the-fly"),
    ({"robustness": {"severities": [0, 6]}}, ("robustness", "severities"), "1..5"),
    ({"robustness": {"cifar10c_path": "../c"}}, ("robustness", "cifar10c_path"), "below BOSUN_DATA_ROOT"),
    ({"robustness": {"parameter_set": "cifar"}}, ("robustness", "parameter_set"), "'auto', 'cifar10c' or"),
    ({"robustness": {"cifar10c_path": "C", "parameter_set": "imagenetc"}, "dataset": {"kind": "cifar10", "path": "c"}},
     ("robustness",), "parameter_set is for corruptions made on the fly"),
    ({"linear": {"avgpool": True}}, ("linear",), "avgpool needs n_last_blocks"),
    ({"linear": {"lr": 0.1, "lrs": [0.1, 1.0]}}, ("linear",), "give lrs (a grid) or lr (one rate)"),
    ({"linear": {"lrs": [0.1, 0]}}, ("linear", "lrs"), "in (0, 10]"),
    ({"linear": {"lrs": []}}, ("linear", "lrs"), "at least 1 item"),
    ({"linear": {"val_fraction": 0.9}}, ("linear", "val_fraction"), "less than or equal to 0.5"),
    ({"linear": {"val_split": "train"}}, ("linear",), "must differ from train_split"),
    ({"tsne": {"learning_rate": 0}}, ("tsne", "learning_rate"), "'auto' or in"),
    ({"attention": {"threshold": 1.5}}, ("attention", "threshold"), "less than or equal to 1"),
    ({"protocols": ["knn", "segmentation"]}, ("protocols", 1), "'knn', 'linear'"),
])
def test_spec_errors_name_the_field(changes: dict[str, Any], loc: tuple, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        evaluate_spec(**changes)
    assert [(e["loc"], message in e["msg"]) for e in error.value.errors()] == [(loc, True)]


def test_one_rate_is_the_earlier_form_of_the_grid() -> None:
    spec = evaluate_spec(linear={"lr": 0.001})
    assert spec.linear.lrs == [0.001]
    assert EvaluateSpec.model_validate(spec.model_dump(mode="json")) == spec
    assert evaluate_spec(linear={"lrs": [0.5, 0.01, 0.5]}).linear.lrs == [0.01, 0.5]
    assert len(evaluate_spec(linear={}).linear.lrs) == 19


def test_spec_round_trips_and_orders_protocols() -> None:
    spec = evaluate_spec(protocols=["gradcam", "knn", "tsne"],
                         robustness={"cifar10c_path": "CIFAR-10-C", "corruptions": ["speckle_noise"]},
                         dataset={"kind": "cifar10", "path": "cifar10"})
    assert spec.protocols == ["knn", "tsne", "gradcam"] and spec.resolved_gradcam_target() == "embedding"
    assert EvaluateSpec.model_validate(spec.model_dump(mode="json")) == spec
    assert spec.data_paths() == ["cifar10"]
    with_robustness = spec.model_copy(update={"protocols": ["knn", "robustness"]})
    assert with_robustness.data_paths() == ["cifar10", "CIFAR-10-C/speckle_noise.npy", "CIFAR-10-C/labels.npy"]


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """Tiny CIFAR-10 pickles and CIFAR-10-C files whose 'fog' rows are the clean test images, 'snow' black."""
    import pickle

    from services.data.cifar import CIFAR10_CLASSES

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train, test = rng.integers(0, 256, (5, 6, 3072), dtype=np.uint8), rng.integers(0, 256, (10, 3072), dtype=np.uint8)
    for b in range(5):
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps({"data": train[b], "labels": list(range(b, b + 6))}))
    test_labels = list(range(10))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": test, "labels": test_labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR10_CLASSES}))
    c10c = tmp_path / "CIFAR-10-C"
    c10c.mkdir()
    clean = test.reshape(10, 3, 32, 32).transpose(0, 2, 3, 1)
    np.save(c10c / "labels.npy", np.tile(test_labels, 5).astype(np.int64))
    np.save(c10c / "fog.npy", np.tile(clean, (5, 1, 1, 1)))
    np.save(c10c / "snow.npy", np.zeros((50, 32, 32, 3), dtype=np.uint8))
    return tmp_path


def test_robustness_reads_cifar10c_files(cifar_root: Path) -> None:
    ctx = context(cifar_root / "jobs", 1, cifar_root)
    spec = evaluate_spec(dataset={"kind": "cifar10", "path": "cifar10"}, protocols=["knn", "robustness"],
                         robustness={"cifar10c_path": "CIFAR-10-C", "corruptions": ["fog", "snow"],
                                     "severities": [1, 3], "max_images": 10})
    result = run(spec, ctx)
    robust = result["robustness"]
    assert robust["source"] == "released CIFAR-10-C files" and robust["parameter_set"] is None
    assert robust["n_images"] == 10
    fog, snow = np.array(robust["accuracy"])
    assert fog.tolist() == [robust["clean_accuracy"]] * 2  # the clean images, whatever the model
    assert set(snow.tolist()) <= {0.0, 10.0}  # one black image: one prediction, right for one class at most
    assert robust["clean_accuracy"] == pytest.approx(100 * result["knn"]["per_k"]["20"]["top1"])
    assert_print_artifacts(ctx, "robustness.png")


def test_single_channel_thermal_backbone(jobs_root: Path, data_root: Path) -> None:
    ctx = context(jobs_root, 6, data_root)
    spec = evaluate_spec(backbone={**TINY_VIT, "kwargs": {**TINY_VIT["kwargs"], "in_chans": 1}},
                         dataset={**DATASET, "modality": "thermal", "channels": "single"},
                         protocols=["knn", "robustness", "attention"], robustness={**ROBUSTNESS, "severities": [5]})
    result = run(spec, ctx)
    assert np.array(result["robustness"]["accuracy"]).shape == (2, 1)
    assert ctx.logs[0].endswith("input 32 px") and result["attention"]["heads"] == 3
    assert_print_artifacts(ctx, "attention.png")
