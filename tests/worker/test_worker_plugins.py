"""A worker whose environment declares one plugin name twice refuses to start, naming both declarations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.shared.test_plugins import distribution
from tests.stack import ROOT


def test_a_worker_with_a_duplicate_plugin_name_exits_naming_both(tmp_path: Path) -> None:
    for name in ("a", "b"):
        distribution(tmp_path / name, f"plug-{name}", f"[bosun.losses]\nfocal = plug_{name}:Term\n",
                     f"plug_{name}", "Term = 1\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BOSUN_")}, "BOSUN_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path / "a"), str(tmp_path / "b")])}
    done = subprocess.run([sys.executable, "-m", "worker", "--queues", "cpu"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert ("error: bosun.losses plugin 'focal' is declared twice: plug_a:Term (from plug-a) and "
            "plug_b:Term (from plug-b)") in done.stderr
