"""GPU utilisation and memory through NVML, only where a GPU and the NVIDIA driver exist.

The gauges are labelled with the GPU as CUDA_VISIBLE_DEVICES names it (an index or a `GPU-…`
UUID), so a panel shows which physical GPU a worker owns. NVML ignores CUDA_VISIBLE_DEVICES, so
the handles are looked up by that name; inside a container that sees one GPU, index 0 is it. The
same reading gives the free memory the worker reports with its heartbeat, which admits shared
jobs (shared.gpu_shares).
"""

from __future__ import annotations

import logging

from shared.prometheus import GPU_MEMORY_TOTAL, GPU_MEMORY_USED, GPU_UTILIZATION

log = logging.getLogger(__name__)


def visible_gpus(visible: str | None) -> list[str] | None:
    """The GPUs named by CUDA_VISIBLE_DEVICES; None (unset) means all, "" or "-1" means none."""
    if visible is None:
        return None
    names = [name.strip() for name in visible.split(",") if name.strip()]
    return [] if names in ([], ["-1"]) else names


class GpuMetrics:
    """Exports the GPUs this worker serves; exports nothing on a machine without NVML."""

    def __init__(self, worker: str, visible: str | None) -> None:
        self.worker = worker
        self.handles: list[tuple[str, object]] = []
        self.free_mb: int | None = None
        """The least free memory of its GPUs at the last reading, in MiB; None without NVML."""
        names = visible_gpus(visible)
        if names == []:  # a CPU worker: the box's GPUs belong to other workers
            return
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no driver, no library: no GPU metrics, and no fake ones
            return
        if names is None:
            names = [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for name in names:
            try:
                handle = (pynvml.nvmlDeviceGetHandleByUUID(name) if name.startswith(("GPU-", "MIG-"))
                          else pynvml.nvmlDeviceGetHandleByIndex(int(name)))
            except Exception as exc:
                log.warning("NVML has no GPU %s: %s", name, exc)
                continue
            self.handles.append((name, handle))

    def update(self) -> None:
        """Read each GPU once; a GPU that NVML cannot read (fallen off the bus, reset) is skipped."""
        if not self.handles:
            return
        import pynvml

        free: list[int] = []
        for name, handle in self.handles:
            try:
                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as exc:  # the monitor thread also heartbeats: it must outlive a GPU fault
                log.warning("NVML cannot read GPU %s: %s", name, exc)
                continue
            GPU_UTILIZATION.labels(worker=self.worker, gpu=name).set(util.gpu / 100.0)
            GPU_MEMORY_USED.labels(worker=self.worker, gpu=name).set(mem.used)
            GPU_MEMORY_TOTAL.labels(worker=self.worker, gpu=name).set(mem.total)
            free.append(int(mem.free) // (1024 * 1024))
        self.free_mb = min(free, default=None)
