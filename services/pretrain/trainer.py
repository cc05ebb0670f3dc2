"""The pretraining loop shared by every method, after facebookresearch/dino `train_one_epoch`.

Per iteration: learning rate and weight decay (first parameter group only) from per-iteration
cosine schedules; forward under optional mixed precision; a non-finite loss stops the job before
any update; backward, per-parameter gradient clipping, method gradient edits (DINO's frozen last
layer), optimizer step (or the two SAM steps), then the method's post-step update (DINO's EMA
teacher). Metrics are logged by global step (= optimizer steps done).

Resuming is exact: checkpoints hold the method (student, teacher, loss state), optimizer, loss
scaler, the position (epoch, iteration within it) and every RNG state, and data order and
augmentation are functions of (seed, epoch, index) (`data/loaders.py`). A stop request is honoured
before the next iteration: the position is checkpointed and `JobStopped` raised.

Data parallelism follows facebookresearch/dino `main_dino.py`: each rank trains the same method
on its share of every global batch (`data/loaders.py`) with the student under DistributedDataParallel,
the learning rate scales with the global batch, and rank r seeds its generators with seed + r
(timm's `train.py`), so stochastic depth and mixup differ between ranks while the data order
does not. The ranks agree before every iteration whether to stop, and average the loss so a
non-finite one stops all of them at the same step. Only rank 0 logs, monitors, checkpoints and
exports; a checkpoint holds the generator states of every rank, and every rank resumes from it.
A collective that fails because a rank is gone raises `RankLost`.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.distributed import DistError
from torch.utils.data import Dataset

from services.distributed import Distributed, RankLost, setup
from services.job_context import JobContext, JobStopped
from services.pretrain.data.loaders import (
    LoaderSettings,
    SeededAugmentation,
    eval_loader,
    iterations_per_epoch,
    train_loader,
)
from services.pretrain.knn_monitor import knn_top1
from services.pretrain.methods import PretrainMethod
from services.pretrain.optim import SAM, build_optimizer, clip_gradients, param_groups
from services.pretrain.rng import capture_rng, restore_rng, seed_everything
from services.pretrain.schedules import cosine_scheduler
from shared.specs.common import BEST_ARTIFACT, LAST_ARTIFACT
from shared.specs.pretrain import PretrainSpec

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# Words of the errors a collective inside the step (DDP's gradient all-reduce, DINO's centre)
# raises when another rank is gone.
_PEER_FAILURE_WORDS = ("connection", "peer", "gloo", "nccl")


def precision_on(amp: str, device_type: str) -> str:
    """The mixed precision a run uses on `device_type`: `amp`, except fp16 off CUDA, which runs in fp32.

    A CPU has no fast half-precision matrix kernels: under fp16 autocast the README's ViT-T recipe
    (a 65536-way DINO head) spent 40 s in one step's matrix products on a CPU core, about 100 times
    its fp32 time. DINO's `use_fp16` defaults to true, so a recipe written for the GPU box and tried
    on a laptop (`bosun submit --smoke`) would otherwise crawl; bf16 stays as asked.
    """
    return "none" if amp == "fp16" and device_type != "cuda" else amp


@dataclass
class PretrainData:
    """Datasets of a run: `train` yields (views, target) with the method's training transform;
    `knn_train` / `knn_test` yield (image, target) with the evaluation transform (None: no monitor)."""

    train: Dataset
    num_classes: int
    knn_train: Dataset | None = None
    knn_test: Dataset | None = None


class Trainer:
    def __init__(self, spec: PretrainSpec, ctx: JobContext, data: PretrainData, method: PretrainMethod,
                 distributed: Distributed | None = None) -> None:
        self.dist = distributed if distributed is not None else setup(ctx)
        self.spec, self.ctx, self.data, self.method = spec, ctx, data, method
        self.opts = spec.options
        self.device = ctx.device
        self.device_type = torch.device(self.device).type
        self.method.to(self.device)
        if self.dist.enabled:
            self.method.distribute(self.dist.wrap, sync_batchnorm=self.device_type == "cuda")
        self.epochs = self.opts.epochs
        self.batch_size = self.opts.batch_size_per_gpu
        self.global_batch_size = self.batch_size * self.dist.world_size
        self.niter = iterations_per_epoch(len(data.train), self.batch_size, self.dist.world_size)
        self.method.start(self.epochs, self.niter)
        peak_lr = self.opts.lr * self.global_batch_size / 256.0
        self.lr_schedule = cosine_scheduler(peak_lr, self.opts.min_lr, self.epochs, self.niter,
                                            warmup_epochs=self.opts.warmup_epochs)
        self.wd_schedule = cosine_scheduler(self.opts.weight_decay, self.opts.weight_decay_end, self.epochs, self.niter)
        self.optimizer = build_optimizer(self.opts.optimizer, param_groups(method.student))
        self.sam = self._sam()
        self.amp = precision_on(spec.resolved_amp, self.device_type)
        if self.amp != spec.resolved_amp and self.dist.rank == 0:
            ctx.log(f"mixed precision {spec.resolved_amp} is for CUDA: on {self.device_type} this run trains in fp32")
        self.scaler = torch.amp.GradScaler(self.device_type, enabled=self.amp == "fp16")
        self.settings = LoaderSettings(self.batch_size, self.opts.num_workers, self.opts.seed,
                                       pin_memory=self.device_type == "cuda", rank=self.dist.rank,
                                       world_size=self.dist.world_size)
        self.train_set = SeededAugmentation(data.train, self.opts.seed)
        self.knn_history: dict[int, float] = {}
        self.curves: dict[str, dict[int, float]] = {"loss": {}, "lr": {}}
        self.last_loss = math.nan
        self.best: dict[str, Any] | None = None  # the best checkpoint's marker, once exported

    def _sam(self) -> SAM | None:
        options = self.spec.supervised
        if self.spec.method != "supervised" or options is None or options.sam_rho == 0:
            return None
        return SAM(self.optimizer, rho=options.sam_rho, adaptive=options.sam_adaptive)

    def autocast(self) -> AbstractContextManager:
        dtype = _AMP_DTYPES.get(self.amp)
        return torch.autocast(self.device_type, dtype=dtype or torch.float32, enabled=dtype is not None)

    # ---------------------------------------------------------------- one step
    def set_schedules(self, it: int) -> None:
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = float(self.lr_schedule[it])
            if i == 0:
                group["weight_decay"] = float(self.wd_schedule[it])

    def _forward(self, inputs: Any, epoch: int, it: int) -> tuple[torch.Tensor, float]:
        with self.autocast():
            loss = self.method.loss(inputs, epoch)
        value = self.dist.mean(loss.item())
        if not math.isfinite(value):
            raise FloatingPointError(f"loss is {value} at epoch {epoch}, iteration {it}; "
                                     f"training stopped, the last checkpoint is kept")
        return loss, value

    def _finish_gradients(self, epoch: int) -> None:
        if self.opts.clip_grad:
            self.scaler.unscale_(self.optimizer)
            clip_gradients(self.method.student, self.opts.clip_grad)
        self.method.adjust_gradients(epoch)

    def step(self, batch: Any, epoch: int, it: int) -> float:
        """One optimizer step on `batch` at global iteration `it`; returns the loss (mean over ranks)."""
        try:
            return self._step(batch, epoch, it)
        except RankLost:
            raise
        except RuntimeError as exc:
            if self.dist.enabled and _peer_failure(exc):
                raise RankLost(f"rank {self.dist.rank}: a collective of the training step failed "
                               f"({str(exc).splitlines()[0][:200]})") from exc
            raise

    def _step(self, batch: Any, epoch: int, it: int) -> float:
        self.set_schedules(it)
        inputs = self.method.prepare(batch, self.device)
        loss, value = self._forward(inputs, epoch, it)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self._finish_gradients(epoch)
        if self.sam is not None:
            self.sam.first_step(zero_grad=True)
            self._forward(inputs, epoch, it)[0].backward()
            self._finish_gradients(epoch)
            self.sam.second_step(zero_grad=True)
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.method.after_step(it)
        return value

    # ---------------------------------------------------------------- checkpoints
    def state(self, epoch: int, iteration: int, rng_ranks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The checkpoint; `rng_ranks` are the generator states of every rank (default: this one's)."""
        rng_ranks = rng_ranks if rng_ranks is not None else [capture_rng()]
        return {"format": CHECKPOINT_FORMAT, "method_name": self.spec.method, "epoch": epoch,
                "iteration": iteration, "niter_per_ep": self.niter, "method": self.method.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": rng_ranks[0], "rng_ranks": rng_ranks, "world_size": self.dist.world_size,
                "last_loss": self.last_loss, "knn_history": dict(self.knn_history),
                "curves": {name: dict(values) for name, values in self.curves.items()}}

    def save_checkpoint(self, epoch: int, iteration: int) -> None:
        """Checkpoint resuming at `iteration` of `epoch`, under step = completed epochs.

        Every rank calls it (the generator states are gathered); rank 0 writes it.
        """
        rng_ranks = self.dist.gather_objects(capture_rng())
        if self.dist.is_main:
            self.ctx.save_checkpoint(self.state(epoch, iteration, rng_ranks), step=epoch)

    def restore(self, checkpoint: dict[str, Any]) -> tuple[int, int]:
        """Load a checkpoint; returns the (epoch, iteration) to resume at."""
        if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("method_name") != self.spec.method:
            raise ValueError(f"checkpoint is not a {self.spec.method!r} pretraining checkpoint "
                             f"(format {checkpoint.get('format')}, method {checkpoint.get('method_name')!r})")
        world_size = checkpoint.get("world_size", 1)
        if world_size != self.dist.world_size:
            raise ValueError(f"checkpoint was saved by {world_size} ranks, this run has {self.dist.world_size}: "
                             f"resuming needs the GPU count it was saved with")
        if checkpoint["niter_per_ep"] != self.niter:
            raise ValueError(f"checkpoint has {checkpoint['niter_per_ep']} iterations per epoch, this run "
                             f"{self.niter}: the dataset or batch size changed since it was saved")
        self.method.load_state_dict(checkpoint["method"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if checkpoint["scaler"]:  # empty from a run without fp16 loss scaling (fp32, bf16, or fp16 asked on a CPU)
            self.scaler.load_state_dict(checkpoint["scaler"])
        restore_rng(checkpoint.get("rng_ranks", [checkpoint["rng"]])[self.dist.rank])
        self.last_loss = checkpoint["last_loss"]
        self.knn_history = dict(checkpoint["knn_history"])
        self.curves.update({name: dict(values) for name, values in checkpoint.get("curves", {}).items()})
        return checkpoint["epoch"], checkpoint["iteration"]

    # ---------------------------------------------------------------- monitoring
    def log_step(self, it: int, epoch: int, loss: float, images_per_s: float) -> None:
        step = it + 1
        group = self.optimizer.param_groups[0]
        values = {"loss": loss, "lr": group["lr"], "wd": group["weight_decay"], "images_per_s": images_per_s,
                  **self.method.step_metrics(it, epoch)}
        if str(self.ctx.device).startswith("cuda"):
            values["gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
        for name, value in values.items():
            self.ctx.log_metric(name, value, step)
        self.curves["loss"][step], self.curves["lr"][step] = float(loss), float(group["lr"])

    def monitor_knn(self, epoch: int) -> None:
        every = self.spec.knn_every
        if not every or self.data.knn_train is None or self.data.knn_test is None:
            return
        if (epoch + 1) % every and epoch + 1 != self.epochs:
            return
        top1 = knn_top1(self.method.feature_backbone(), eval_loader(self.data.knn_train, self.settings),
                        eval_loader(self.data.knn_test, self.settings), num_classes=self.data.num_classes,
                        k=self.spec.knn_k, device=self.device, autocast_dtype=_AMP_DTYPES.get(self.amp))
        step = (epoch + 1) * self.niter
        self.knn_history[step] = top1
        self.ctx.log_metric("knn_top1", top1, step)

    # ---------------------------------------------------------------- loop
    def run_epoch(self, epoch: int, start_iteration: int) -> None:
        loader = train_loader(self.train_set, self.settings, epoch, start_iteration)
        tick = time.perf_counter()
        for i, batch in enumerate(loader, start=start_iteration):
            if self.dist.any(self.ctx.should_stop()):
                self.save_checkpoint(epoch, i)
                raise JobStopped(f"stopped at epoch {epoch}, iteration {i}; checkpoint saved")
            it = epoch * self.niter + i
            self.last_loss = self.step(batch, epoch, it)
            now = time.perf_counter()
            if self.dist.is_main:
                if (it + 1) % self.spec.log_every == 0 or i + 1 == self.niter:
                    self.log_step(it, epoch, self.last_loss, self.global_batch_size / max(now - tick, 1e-9))
                # every step; the worker's context writes it at most once a second, with rate and ETA
                total = self.epochs * self.niter
                self.ctx.progress((it + 1) / total, f"epoch {epoch + 1}/{self.epochs} · step {it + 1}/{total}")
            tick = now

    def fit(self) -> dict[str, Any]:
        try:
            return self._fit()
        finally:
            self.dist.close()

    def _fit(self) -> dict[str, Any]:
        checkpoint = self.ctx.load_latest_checkpoint()
        if checkpoint is None:
            seed_everything(self.opts.seed + self.dist.rank)
            start_epoch, iteration = 0, 0
        else:
            start_epoch, iteration = self.restore(checkpoint)
            if self.dist.is_main:
                self.ctx.log(f"resumed from epoch {start_epoch}, iteration {iteration}")
        for epoch in range(start_epoch, self.epochs):
            self.run_epoch(epoch, iteration)
            iteration = 0
            if self.dist.is_main:
                self.monitor_knn(epoch)
                knn = f", knn_top1 {self.knn_history[max(self.knn_history)]:.4f}" if self.knn_history else ""
                self.ctx.log(f"epoch {epoch + 1}/{self.epochs}: loss {self.last_loss:.4f}{knn}")
            if (epoch + 1) % self.spec.checkpoint_every == 0 or epoch + 1 == self.epochs:
                self.save_checkpoint(epoch + 1, 0)
                if self.dist.is_main:
                    self.save_curves(epoch + 1)
        if self.dist.is_main:
            self.export()
        return self.result()

    def save_curves(self, epoch: int) -> None:
        """Redraw `training_curves.png`/`.svg` from the metrics so far, at each checkpoint and the end.

        A figure that cannot be drawn is logged, not raised: it must not cost a run its checkpoint.
        """
        from services.evaluate.figures import FigureLabel, source_text
        from services.pretrain.curves import save_training_curves

        curves = {**self.curves, "knn_top1": dict(self.knn_history)}
        label = FigureLabel("pretrain", getattr(self.ctx, "job_id", None), source_text(self.spec.source), epoch)
        try:
            save_training_curves(self.ctx, curves, niter_per_epoch=self.niter, label=label,
                                 title=f"{self.spec.method} pretraining of {self.spec.backbone.name}")
        except (ValueError, RuntimeError, OSError) as exc:
            log.exception("training curves at epoch %d", epoch)
            self.ctx.log(f"training curves not drawn at epoch {epoch}: {exc}")

    def export(self) -> None:
        """Save the artifact `checkpoint.pt` that evaluation and landscape jobs load (`export.py`), and
        `best.pt` the same way from the checkpoint the job's policy marked best, where it keeps one
        (a source's `checkpoint: best`). That loads the best weights into the method, so it comes last."""
        from services.pretrain.export import exported_checkpoint

        classes = list(self.data.train.classes) if self.method.classifier() is not None else None
        path = Path(self.ctx.scratch) / LAST_ARTIFACT
        torch.save(exported_checkpoint(self.spec, self.method, self.epochs, classes), path)
        self.ctx.save_artifact(LAST_ARTIFACT, path, content_type="application/octet-stream")
        best = self.ctx.load_best_checkpoint()
        if best is None:
            return
        marked, state = best
        self.method.load_state_dict(state["method"])
        torch.save(exported_checkpoint(self.spec, self.method, int(state["epoch"]), classes), path)
        self.ctx.save_artifact(BEST_ARTIFACT, path, content_type="application/octet-stream")
        self.best = {name: marked[name] for name in ("step", "metric", "mode", "value")}
        self.ctx.log(f"best checkpoint (step {marked['step']}, {marked['metric']} {marked['value']:.4g}) "
                     f"exported as {BEST_ARTIFACT}")

    def result(self) -> dict[str, Any]:
        last_knn = self.knn_history[max(self.knn_history)] if self.knn_history else None
        return {"method": self.spec.method, "backbone": self.spec.backbone.name, "epochs": self.epochs,
                "iterations": self.epochs * self.niter, "train_samples": len(self.data.train),
                "world_size": self.dist.world_size, "global_batch_size": self.global_batch_size,
                "embed_dim": self.method.embed_dim, "loss": self.last_loss, "knn_top1": last_knn,
                "precision": "fp32" if self.amp == "none" else self.amp,
                "knn_history": {str(k): v for k, v in sorted(self.knn_history.items())},
                **({"best_checkpoint": self.best} if self.best is not None else {})}


def train(spec: PretrainSpec, ctx: JobContext, data: PretrainData, method: PretrainMethod,
          distributed: Distributed | None = None) -> dict[str, Any]:
    """Train `method` on `data` as `spec` says, resuming from the context's latest checkpoint;
    `distributed` is this process' rank (default: joined from the context's rendezvous)."""
    distributed = distributed if distributed is not None else setup(ctx)
    try:
        return Trainer(spec, ctx, data, method, distributed).fit()
    finally:
        distributed.close()


def _peer_failure(exc: RuntimeError) -> bool:
    """Whether `exc`, raised inside a step, is a collective failing because a rank is gone."""
    text = str(exc).lower()
    return isinstance(exc, DistError) or any(word in text for word in _PEER_FAILURE_WORDS)
