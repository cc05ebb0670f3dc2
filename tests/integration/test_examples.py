"""Every job file of the README and deploy/examples, submitted as written through `bosun submit`
(a sweep file, `sweep-*.yaml`, through `bosun sweep`).

The follow-up jobs run exactly as written (they name pretrain job 1, the first job of a fresh
stack); the recipes meant for days run with `bosun submit --smoke`, the one documented override,
which lowers only epochs, images, image size and crops. `num_workers: 10` and the multi-GPU
ranks stay as written.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Stack, running_stack
from tests.stack import ROOT, bosun

pytestmark = pytest.mark.integration
EXAMPLES = ROOT / "deploy" / "examples"


def readme_job_files(folder: Path) -> list[Path]:
    """The README's YAML blocks that are job files, written out as the README names them."""
    paths = []
    for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        name = re.match(r"# (\S+\.yaml)\n", block)
        if name and "\ntype:" in block:
            paths.append(folder / name.group(1))
            paths[-1].write_text(block)
    return paths


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from services.data.synthetic import make_synthetic

    data = tmp_path_factory.mktemp("examples-data")
    make_synthetic(data / "synthetic-maritime", n_images=400, image_size=32, seed=0)
    code = tmp_path_factory.mktemp("examples-code")
    shutil.copytree(EXAMPLES / "script-tiny", code / "script-tiny")
    with running_stack(tmp_path_factory.mktemp("examples"), data, code_root=str(code)) as running:
        running.worker(name="ex0@box")
        running.worker(name="ex1@box")
        yield running


def submit(stack: Stack, path: Path, *options: str) -> int:
    env = {**stack.env, "BOSUN_API_URL": stack.url,
           "BOSUN_TOKEN": stack.client.http.headers["Authorization"].removeprefix("Bearer ")}
    printed = bosun(env, "submit", str(path), *options)
    return int(re.search(r"submitted job (\d+)", printed).group(1))


def submit_sweep(stack: Stack, path: Path) -> int:
    env = {**stack.env, "BOSUN_API_URL": stack.url,
           "BOSUN_TOKEN": stack.client.http.headers["Authorization"].removeprefix("Bearer ")}
    printed = bosun(env, "sweep", str(path))
    return int(re.search(r"submitted sweep (\d+)", printed).group(1))


@pytest.mark.timeout(1800)
def test_every_example_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    readme = readme_job_files(tmp_path)
    assert [p.name for p in readme] == ["pretrain.yaml"]
    first = submit(stack, EXAMPLES / "dino-vit-small-adamw-synthetic-smoke.yaml")
    assert first == 1  # the follow-ups name it
    jobs = {"dino-vit-small-adamw-synthetic-smoke": first,
            "evaluate-knn-linear": submit(stack, EXAMPLES / "evaluate-knn-linear.yaml"),
            "landscape-2d": submit(stack, EXAMPLES / "landscape-2d.yaml"),
            "dino-resnet50-lars-synthetic-smoke": submit(stack, EXAMPLES / "dino-resnet50-lars-synthetic-smoke.yaml"),
            "README pretrain.yaml": submit(stack, readme[0], "--smoke"),
            "dino-vit-small-adamw": submit(stack, EXAMPLES / "dino-vit-small-adamw.yaml", "--smoke"),
            "dino-resnet50-lars": submit(stack, EXAMPLES / "dino-resnet50-lars.yaml", "--smoke"),
            "script-tiny": submit(stack, EXAMPLES / "script-tiny.yaml")}
    sweeps = {path.stem: submit_sweep(stack, path) for path in sorted(EXAMPLES.glob("sweep-*.yaml"))}
    assert {p.stem for p in EXAMPLES.glob("*.yaml")} <= set(jobs) | set(sweeps)
    done = {name: stack.client.wait(job_id, timeout=1200) for name, job_id in jobs.items()}
    tables = {name: stack.client.wait_sweep(sweep_id, timeout=1200) for name, sweep_id in sweeps.items()}
    done.update({f"{name} job {job['id']}": stack.client.job(job["id"])
                 for name, table in tables.items() for job in table["jobs"]})
    failed = {name: (job["status"], job["error"]) for name, job in done.items() if job["status"] != "succeeded"}
    assert not failed, (failed, stack.logs())
    assert all(table["rows"] and all("knn_top1" in row["metrics"] for row in table["rows"])
               for table in tables.values()), tables
    # as written: ten loader processes per rank, two ranks where the recipe says gpus: 2
    for name in ("README pretrain.yaml", "dino-vit-small-adamw", "dino-resnet50-lars"):
        spec = stack.client.job(jobs[name])["spec"]
        assert spec["dino"]["num_workers"] == 10 and spec["dino"]["epochs"] == 2, spec
    assert done["dino-vit-small-adamw"]["result"]["world_size"] == 2
    assert done["dino-resnet50-lars"]["result"]["world_size"] == 2
    assert done["dino-vit-small-adamw"]["spec"]["dino"]["out_dim"] == 65536
    assert {"knn", "linear"} <= set(done["evaluate-knn-linear"]["result"])
    assert "surface.npz" in {a["name"] for a in stack.client.artifacts(jobs["landscape-2d"])}
    assert "model.json" in {a["name"] for a in stack.client.artifacts(jobs["script-tiny"])}
