"""`bosun data list` (the API's catalog) and `bosun data make-synthetic` (in the CLI's process, without torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.cli.conftest import bosun
from tests.stack import ROOT, stack_env


def test_cli_data_list_prints_the_catalog(cli_as, monkeypatch: pytest.MonkeyPatch) -> None:
    cli_as("alice")
    monkeypatch.delenv("FIFTYONE_DATABASE_URI", raising=False)
    result = bosun("data", "list")
    assert result.exit_code == 0, result.output
    assert "synthetic-maritime" in result.output and "1 datasets" in result.output


def test_make_synthetic_writes_the_set_in_process_without_torch(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "home", data_root=str(tmp_path / "data"))
    code = (
        "import sys\n"
        "from api.cli import main\n"
        "sys.argv = ['bosun', 'data', 'make-synthetic', '--name', 'tiny', '--n-images', '12', '--image-size', '32']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'torchvision', 'fiftyone', 'matplotlib') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]"
    assert json.loads(summary)["n_images"] == 12 and json.loads(summary)["root"] == str(tmp_path / "data" / "tiny")
    assert (tmp_path / "data" / "tiny" / "annotations.json").exists()

    again = subprocess.run([sys.executable, "-m", "api.cli", "data", "make-synthetic", "--name", "tiny"], env=env,
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "error: a synthetic set already exists" in again.stdout, again.stdout
