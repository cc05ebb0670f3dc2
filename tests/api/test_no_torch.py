"""The API process stays small: importing and serving the app never loads torch or timm."""

from __future__ import annotations

import subprocess
import sys


def test_api_does_not_import_torch(embedded_settings) -> None:
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from shared.settings import Settings\n"
        "import api.main, api.cli\n"
        f"app = api.main.create_app(Settings(home={str(embedded_settings.home)!r}))\n"
        "c = TestClient(app)\n"
        "assert c.get('/readyz').status_code == 200\n"
        "c.post('/api/v1/jobs', json={'type': 'evaluate', 'spec': {'backbone': {'name': 'resnet18'}}})\n"
        "heavy = sorted(m for m in ('torch', 'timm', 'torchvision', 'fiftyone', 'matplotlib') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
