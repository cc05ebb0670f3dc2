"""Data-parallel pretraining with real ranks: two CPU processes in a gloo process group."""

import os
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from services.distributed import Rendezvous
from services.job_context import LocalContext
from services.pretrain.methods import build_method
from services.pretrain.rng import seed_everything
from services.pretrain.trainer import PretrainData, train
from tests.services.pretrain.helpers import TINY_RESNET, TINY_VIT, MultiCrop, StripesDataset, TwoViews, spec

torch.set_num_threads(1)

WORLD = 2


def data_for(s, n):
    transform = {"dino": MultiCrop(s.dino.local_crops_number) if s.dino else None,
                 "simclr": TwoViews(), "supcon": TwoViews(), "supervised": None}[s.method]
    return PretrainData(train=StripesDataset(n, transform), num_classes=2,
                        knn_train=StripesDataset(n, seed=1), knn_test=StripesDataset(8, seed=2))


class RankRecordingContext(LocalContext):
    """One rank's context on the job's shared folder; records what the rank wrote, and can die."""

    def __init__(self, root: Path, *, die_at_check: int | None = None, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.die_at_check = die_at_check
        self.writes: list[tuple[str, object]] = []

    def should_stop(self) -> bool:
        if self.die_at_check is not None and self._checks + 1 == self.die_at_check:
            die(self.root)
        return super().should_stop()

    def log_metric(self, name: str, value: float, step: int) -> None:
        self.writes.append(("metric", name))
        super().log_metric(name, value, step)

    def progress(self, fraction: float, message: str = "") -> None:
        self.writes.append(("progress", fraction))
        super().progress(fraction, message)

    def save_checkpoint(self, state, step: int) -> None:
        self.writes.append(("checkpoint", step))
        super().save_checkpoint(state, step)

    def save_artifact(self, name, data, content_type=None) -> None:
        self.writes.append(("artifact", name))
        super().save_artifact(name, data, content_type)


def die(root: Path) -> None:
    """Leave the job as a crashed rank does: no clean-up, no goodbye to the process group."""
    (root / "died_at").write_text(repr(time.time()))
    os._exit(3)


def rank_main(rank: int, ports, runs: list[dict], out: str) -> None:
    """Run `runs` one after another as rank `rank`; each run's outcome goes to <out>/<name>-<rank>.pt."""
    torch.set_num_threads(1)

    def publish(address: str, port: int) -> None:
        for _ in range(WORLD - 1):
            ports.put((address, port))

    for run in runs:
        s, root = run["spec"], Path(run["root"])
        ctx = RankRecordingContext(root, stop_after_checks=run.get("stop_after", {}).get(rank),
                                   die_at_check=run.get("die_at_check", {}).get(rank))
        ctx.rendezvous = Rendezvous(rank=rank, world_size=WORLD, address="127.0.0.1", publish=publish,
                                    lookup=lambda: ports.get(timeout=60), timeout_s=30)
        seed_everything(0)
        method = build_method(s, num_classes=2, img_size=16)
        if run.get("die_in_backward") == rank:
            die_in_backward(method, root, after_steps=2)
        outcome, result = "done", None
        try:
            result = train(s, ctx, data_for(s, run["n"]), method)
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        torch.save({"outcome": outcome, "ended_at": time.time(), "result": result, "writes": ctx.writes,
                    "metrics": ctx.metrics, "state": method.state_dict()}, Path(out) / f"{run['name']}-{rank}.pt")


def die_in_backward(method, root: Path, after_steps: int) -> None:
    """Make the rank die at the start of backward in step `after_steps` + 1 (its loss already averaged)."""
    original, calls = method.loss, {"n": 0}

    def loss(inputs, epoch):
        value = original(inputs, epoch)
        calls["n"] += 1
        if calls["n"] > after_steps:
            value.register_hook(lambda grad: die(root))
        return value

    method.loss = loss


def run_ranks(runs: list[dict], out: Path, timeout: float = 120) -> list[list[dict]]:
    """Run `runs` on WORLD spawned ranks; returns per run the outcome of each rank."""
    out.mkdir(parents=True, exist_ok=True)
    context = mp.get_context("spawn")
    ports = context.Queue()
    processes = [context.Process(target=rank_main, args=(rank, ports, runs, str(out))) for rank in range(WORLD)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0))
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
        process.join()
    assert not hung, f"ranks still running after {timeout} s"
    files = [[out / f"{run['name']}-{rank}.pt" for rank in range(WORLD)] for run in runs]
    return [[torch.load(f, weights_only=False) if f.exists() else None for f in ranks] for ranks in files]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert list(a) == list(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


# ------------------------------------------------------------------ one process at 2B == 2 ranks at B
# DINO runs SGD here: Adam's normalised step turns float noise in gradients that are zero in exact
# arithmetic (attention key biases) into weight differences far above the tolerance.
EQUIVALENT = {
    "dino": lambda batch: spec("dino", options={"epochs": 2, "batch_size_per_gpu": batch, "drop_path_rate": 0.0,
                                                "local_crops_number": 2, "optimizer": "sgd"}),
    "dino_global_crops": lambda batch: spec("dino", options={"epochs": 2, "batch_size_per_gpu": batch,
                                                             "drop_path_rate": 0.0, "local_crops_number": 0,
                                                             "optimizer": "sgd"}),
    "supervised": lambda batch: spec("supervised", backbone=TINY_VIT,
                                     options={"epochs": 2, "batch_size_per_gpu": batch, "label_smoothing": 0.1}),
    "simclr": lambda batch: spec("simclr", backbone=TINY_VIT,
                                 options={"epochs": 2, "batch_size_per_gpu": batch, "proj_layers": 1, "lr": 1.0,
                                          "temperature": 0.5}),
    "supcon": lambda batch: spec("supcon", backbone=TINY_VIT,
                                 options={"epochs": 2, "batch_size_per_gpu": batch, "proj_layers": 1, "lr": 1.0,
                                          "temperature": 0.5}),
}
N_EQUIVALENT = 16
B = 4


@pytest.fixture(scope="module")
def two_rank_runs(tmp_path_factory):
    """Every EQUIVALENT spec trained by 2 ranks at batch B, in one pair of processes."""
    root = tmp_path_factory.mktemp("ddp")
    runs = [{"name": name, "spec": make(B), "root": str(root / name), "n": N_EQUIVALENT}
            for name, make in EQUIVALENT.items()]
    return dict(zip(EQUIVALENT, run_ranks(runs, root / "out"), strict=True))


@pytest.mark.parametrize("name", list(EQUIVALENT))
def test_two_ranks_train_as_one_process_with_the_global_batch(tmp_path, two_rank_runs, name):
    s = EQUIVALENT[name](B * WORLD)
    ctx = LocalContext(tmp_path / "single")
    seed_everything(0)
    method = build_method(s, num_classes=2, img_size=16)
    expected = train(s, ctx, data_for(s, N_EQUIVALENT), method)

    rank0, rank1 = two_rank_runs[name]
    assert rank0["outcome"] == rank1["outcome"] == "done"
    assert rank0["result"]["world_size"] == 2 and rank0["result"]["global_batch_size"] == B * WORLD
    assert rank0["result"]["iterations"] == expected["iterations"] == 4
    assert expected["world_size"] == 1 and expected["global_batch_size"] == B * WORLD
    assert_same_weights(rank0["state"], rank1["state"], atol=0)
    assert_same_weights(rank0["state"], method.state_dict(), atol=1e-5)
    assert rank0["metrics"]["loss"] == pytest.approx(ctx.metrics["loss"], abs=1e-5)
    assert rank0["metrics"]["lr"] == pytest.approx(ctx.metrics["lr"])
    # Rank 0 keeps the records; rank 1 only trains.
    assert rank1["writes"] == [] and rank1["metrics"] == {}
    assert ("artifact", "checkpoint.pt") in rank0["writes"] and ("checkpoint", 2) in rank0["writes"]


# ------------------------------------------------------------------ stop agreement and exact resume
def test_a_stop_seen_by_one_rank_stops_both_and_resumes_exactly(tmp_path):
    s = spec("dino", options={"epochs": 2, "batch_size_per_gpu": 2, "drop_path_rate": 0.1}, knn_every=1, knn_k=3)
    runs = [{"name": "full", "spec": s, "root": str(tmp_path / "full"), "n": 16},
            {"name": "stopped", "spec": s, "root": str(tmp_path / "job"), "n": 16, "stop_after": {1: 2}},
            {"name": "resumed", "spec": s, "root": str(tmp_path / "job"), "n": 16}]
    full, stopped, resumed = run_ranks(runs, tmp_path / "out")

    assert [r["outcome"] for r in stopped] == ["JobStopped: stopped at epoch 0, iteration 2; checkpoint saved"] * 2
    assert [w for w in stopped[0]["writes"] if w[0] == "checkpoint"] == [("checkpoint", 0)]
    assert stopped[1]["writes"] == []
    checkpoint = torch.load(tmp_path / "job" / "checkpoints" / "0.pt", weights_only=False)
    assert (checkpoint["epoch"], checkpoint["iteration"], checkpoint["world_size"]) == (0, 2, 2)
    rng0, rng1 = checkpoint["rng_ranks"]
    assert not torch.equal(rng0["torch"], rng1["torch"]), "ranks must draw different stochastic depth"

    assert [r["outcome"] for r in full + resumed] == ["done"] * 4
    for rank in range(WORLD):
        assert_same_weights(full[rank]["state"], resumed[rank]["state"], atol=0)
    merged = {**stopped[0]["metrics"]["loss"], **resumed[0]["metrics"]["loss"]}
    assert merged == full[0]["metrics"]["loss"]
    assert resumed[0]["metrics"]["knn_top1"] == full[0]["metrics"]["knn_top1"]
    assert resumed[1]["writes"] == [] and full[1]["writes"] == []


# ------------------------------------------------------------------ a rank that dies
@pytest.mark.parametrize("where", ["between_steps", "in_backward"])
def test_rank_zero_raises_rank_lost_soon_after_a_rank_dies(tmp_path, where):
    s = spec("dino", options={"epochs": 4, "batch_size_per_gpu": 2, "drop_path_rate": 0.0})
    run = {"name": where, "spec": s, "root": str(tmp_path / "job"), "n": 16}
    run.update({"die_at_check": {1: 3}} if where == "between_steps" else {"die_in_backward": 1})
    (rank0, rank1), = run_ranks([run], tmp_path / "out")

    assert rank1 is None, "rank 1 was meant to die"
    assert rank0["outcome"].startswith("RankLost: rank 0:"), rank0["outcome"]
    assert (tmp_path / "job" / "died_at").exists()
    assert "timed out" not in rank0["outcome"].lower(), "rank 0 saw the loss itself, not a collective's timeout"
    if where == "in_backward":
        assert "training step" in rank0["outcome"]
    assert not (tmp_path / "job" / "checkpoints" / "latest").exists()


# ------------------------------------------------------------------ one process
class Recorder(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, x):
        self.calls += 1
        return self.module(x)


@pytest.mark.parametrize("method_name", ["dino", "simclr"])
def test_distribute_keeps_the_state_dict_and_syncs_batchnorm(method_name):
    s = spec(method_name, backbone=TINY_RESNET)
    method = build_method(s, num_classes=2, img_size=16)
    keys, n_params = list(method.state_dict()), len(list(method.parameters()))
    wrappers = []
    method.distribute(lambda module: wrappers.append(Recorder(module)) or wrappers[-1], sync_batchnorm=True)

    assert list(method.state_dict()) == keys and len(list(method.parameters())) == n_params
    batchnorms = [m for m in method.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert batchnorms and all(isinstance(m, nn.SyncBatchNorm) for m in batchnorms)
    if method_name == "dino":
        assert any(isinstance(m, nn.SyncBatchNorm) for m in method.teacher.modules())
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]
    method.run_student(views)
    assert wrappers[0].module is method.student and wrappers[0].calls == 1


def test_checkpoints_without_rank_states_resume_and_another_world_size_is_refused(tmp_path):
    s = spec("supervised", options={"epochs": 2, "mixup_alpha": 0.2}, checkpoint_every=1)

    def fit(root):
        seed_everything(0)
        method = build_method(s, num_classes=2, img_size=16)
        return train(s, LocalContext(root), data_for(s, 16), method), method

    _, expected = fit(tmp_path / "a")
    fit(tmp_path / "b")
    checkpoints = tmp_path / "b" / "checkpoints"
    (checkpoints / "2.pt").unlink()
    (checkpoints / "latest").write_text('{"step": 1, "file": "1.pt"}')
    state = torch.load(checkpoints / "1.pt", weights_only=False)
    assert state["world_size"] == 1 and len(state["rng_ranks"]) == 1
    old = {k: v for k, v in state.items() if k not in ("rng_ranks", "world_size")}
    torch.save(old, checkpoints / "1.pt")
    _, resumed = fit(tmp_path / "b")
    assert_same_weights(expected.state_dict(), resumed.state_dict(), atol=0)

    (checkpoints / "2.pt").unlink()
    (checkpoints / "latest").write_text('{"step": 1, "file": "1.pt"}')
    torch.save({**state, "world_size": 2}, checkpoints / "1.pt")
    with pytest.raises(ValueError, match="saved by 2 ranks, this run has 1"):
        fit(tmp_path / "b")
