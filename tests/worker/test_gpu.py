"""worker/gpu.py against a stand-in NVML: which GPUs a worker exports, and surviving a GPU fault."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from worker.gpu import GpuMetrics, visible_gpus

GIB = 1 << 30


class FakeNvml(types.ModuleType):
    """Two GPUs by index and UUID; `broken` names GPUs whose reads raise, as after an XID fault."""

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.broken: set[str] = set()
        self.free: dict[str, int] = {}  # handle -> free bytes, where not 79 GiB
        self.inits = 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        if index not in (0, 1):
            raise RuntimeError(f"invalid index {index}")
        return f"gpu{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:
        return {"GPU-aaaa": "gpu0", "GPU-bbbb": "gpu1"}[uuid]

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> types.SimpleNamespace:
        if handle in self.broken:
            raise RuntimeError("GPU is lost")
        return types.SimpleNamespace(gpu=40 if handle == "gpu0" else 90)

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(used=GIB, free=self.free.get(handle, 79 * GIB), total=80 * GIB)


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    yield fake


def gauge(name: str, worker: str, gpu: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"worker": worker, "gpu": gpu})


def test_visible_gpus_parses_cuda_visible_devices() -> None:
    assert visible_gpus(None) is None
    assert visible_gpus("") == [] and visible_gpus("-1") == []
    assert visible_gpus("1") == ["1"] and visible_gpus(" 0, 1 ") == ["0", "1"]
    assert visible_gpus("GPU-aaaa") == ["GPU-aaaa"]


def test_exports_only_the_workers_gpu(nvml: FakeNvml) -> None:
    GpuMetrics("gpu1@box", "1").update()
    assert gauge("bosun_gpu_utilization_ratio", "gpu1@box", "1") == pytest.approx(0.9)
    assert gauge("bosun_gpu_memory_total_bytes", "gpu1@box", "1") == 80 * GIB
    assert gauge("bosun_gpu_memory_used_bytes", "gpu1@box", "0") is None


def test_unset_means_every_gpu_and_uuids_are_looked_up(nvml: FakeNvml) -> None:
    GpuMetrics("all@box", None).update()
    assert gauge("bosun_gpu_utilization_ratio", "all@box", "0") == pytest.approx(0.4)
    assert gauge("bosun_gpu_utilization_ratio", "all@box", "1") == pytest.approx(0.9)
    GpuMetrics("uuid@box", "GPU-bbbb").update()
    assert gauge("bosun_gpu_utilization_ratio", "uuid@box", "GPU-bbbb") == pytest.approx(0.9)


def test_cpu_worker_exports_no_gpu(nvml: FakeNvml) -> None:
    metrics = GpuMetrics("cpu@box", "")
    metrics.update()
    assert metrics.handles == [] and nvml.inits == 0
    assert gauge("bosun_gpu_utilization_ratio", "cpu@box", "0") is None


def test_unknown_gpu_is_skipped(nvml: FakeNvml) -> None:
    metrics = GpuMetrics("odd@box", "0,7")
    assert [name for name, _ in metrics.handles] == ["0"]


def test_a_gpu_fault_does_not_stop_the_others(nvml: FakeNvml) -> None:
    metrics = GpuMetrics("faulty@box", "0,1")
    nvml.broken.add("gpu0")
    metrics.update()
    assert gauge("bosun_gpu_utilization_ratio", "faulty@box", "0") is None
    assert gauge("bosun_gpu_utilization_ratio", "faulty@box", "1") == pytest.approx(0.9)


def test_no_nvml_exports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    metrics = GpuMetrics("plain@box", "0")
    metrics.update()
    assert metrics.handles == []
    assert gauge("bosun_gpu_utilization_ratio", "plain@box", "0") is None


def test_the_free_memory_of_its_gpu_is_read_for_the_heartbeat(nvml: FakeNvml) -> None:
    """The one seam where NVML is read, with NVML stood in (none runs here): the least free of its GPUs, in MiB."""
    metrics = GpuMetrics("mem@box", "0,1")
    assert metrics.free_mb is None  # nothing read yet
    nvml.free["gpu1"] = 3 * GIB
    metrics.update()
    assert metrics.free_mb == 3 * 1024


def test_the_worker_heartbeat_reports_its_gpus_free_memory(nvml: FakeNvml, embedded_settings) -> None:
    """NVML stood in (none runs here): the worker's row carries what the last reading found; without NVML, None."""
    from shared.db import Worker, session_scope
    from worker.monitor import Monitor

    nvml.free["gpu0"] = 20 * GIB
    monitor = Monitor(embedded_settings, "mem@box", "gpu", "0")
    monitor._pass()
    monitor._pass()  # the beat writes the previous pass's reading
    with session_scope(embedded_settings.database_url) as s:
        assert s.get(Worker, "mem@box").gpu_free_mb == 20 * 1024
    plain = Monitor(embedded_settings, "cpu@box", "cpu", "")
    plain._pass()
    with session_scope(embedded_settings.database_url) as s:
        assert s.get(Worker, "cpu@box").gpu_free_mb is None
