"""The git revision of a checkout: which commit it has and whether its files differ from it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def checkout_revision(folder: Path, *, untracked: bool = True) -> dict[str, Any] | None:
    """{'commit', 'dirty'} of the checkout `folder` is in, or None outside one (or without git).

    `dirty` counts changed tracked files, and untracked ones unless `untracked` is False.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        listed = "normal" if untracked else "no"
        status = subprocess.run(["git", "status", "--porcelain", f"--untracked-files={listed}"], cwd=folder,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
