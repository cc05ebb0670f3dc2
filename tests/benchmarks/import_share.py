"""The share of a small evaluate job's time spent importing, in a job process made as the worker makes it.

Imports are timed by wrapping `__import__` and `importlib.import_module` in the job's process
(outermost imports of modules not loaded yet); the job runs on a `LocalContext`.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

JOB = {"backbone": {"name": "resnet18"},
       "dataset": {"kind": "synthetic-maritime", "image_size": 16, "max_per_split": 6},
       "protocols": ["knn", "tsne"], "knn": {"k": [3]}, "batch_size": 64}


def _job_in_this_process(data_root: str, scratch: str) -> float:
    import builtins
    import importlib
    import sys
    import time

    spent, depth = [0.0], [0]

    def timed(real):
        def wrapper(name, *args, **kwargs):
            if depth[0] or name in sys.modules:
                return real(name, *args, **kwargs)
            depth[0] += 1
            started = time.perf_counter()
            try:
                return real(name, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - started
                depth[0] -= 1
        return wrapper

    builtins.__import__ = timed(builtins.__import__)
    importlib.import_module = timed(importlib.import_module)
    started = time.perf_counter()
    from services.job_context import LocalContext
    from shared.job_types import parse_spec
    from worker.service_loader import load_service

    ctx = LocalContext(Path(scratch), data_root=Path(data_root))
    load_service("evaluate")(parse_spec("evaluate", JOB), ctx)
    return spent[0] / (time.perf_counter() - started)


def import_share(*, preloaded: bool) -> float:
    """Imports' share of the job's time: in a child of the preloaded forkserver, or a freshly spawned child."""
    import multiprocessing

    from services.data.synthetic import make_synthetic
    from worker.processes import PRELOAD

    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic(Path(tmp) / "data" / "synthetic-maritime", n_images=36, image_size=32)
        if preloaded:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(PRELOAD))
        else:
            context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            if preloaded:  # the worker's forkserver is up before a job arrives
                pool.submit(int).result()
            return pool.submit(_job_in_this_process, str(Path(tmp) / "data"), str(Path(tmp) / "job")).result()
