"""GPU utilisation and memory through NVML, only where a GPU and the NVIDIA driver exist."""

from __future__ import annotations

import logging

from shared.metrics import GPU_MEMORY_TOTAL, GPU_MEMORY_USED, GPU_UTILIZATION

log = logging.getLogger(__name__)


class GpuMetrics:
    """Exports the GPUs this worker serves; exports nothing on a machine without NVML."""

    def __init__(self, worker: str, visible: str | None) -> None:
        self.worker = worker
        self.handles: list[tuple[str, object]] = []
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no driver, no library: no GPU metrics, and no fake ones
            return
        indices = [i.strip() for i in visible.split(",")] if visible else [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        for index in indices:
            try:
                self.handles.append((index, pynvml.nvmlDeviceGetHandleByIndex(int(index))))
            except Exception as exc:
                log.warning("NVML has no GPU %s: %s", index, exc)

    def update(self) -> None:
        if not self.handles:
            return
        import pynvml

        for index, handle in self.handles:
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            GPU_UTILIZATION.labels(worker=self.worker, gpu=index).set(util.gpu / 100.0)
            GPU_MEMORY_USED.labels(worker=self.worker, gpu=index).set(mem.used)
            GPU_MEMORY_TOTAL.labels(worker=self.worker, gpu=index).set(mem.total)
