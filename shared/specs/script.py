"""The `script` job: a researcher's own command, run from a folder below BOSUN_CODE_ROOT or an uploaded archive.

No torch here: the API validates this spec. The paths are checked for shape here (relative, no
'..'); the API resolves them below the code root (symlinks included) in `check_code_paths`, and
checks that a named archive (shared.code_archives) is in the store.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import Field, field_validator, model_validator

from shared.code_archives import ARCHIVE_ID
from shared.paths import OutsideRoot, below_root
from shared.specs.common import SpecModel

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV = frozenset({"BOSUN_RUN_SOCKET", "BOSUN_RUN_DIR", "BOSUN_RUN_SPEC", "PYTHONPATH"})


def relative_code_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError("must be a relative path below BOSUN_CODE_ROOT without '..'")
    return value


class ScriptSpec(SpecModel):
    """Run `command` in the folder `code`, or in an uploaded `archive` unpacked into the job's own folder;
    the script talks to bosun through `shared.sdk.run`."""

    code: str | None = Field(default=None, min_length=1, max_length=500,
                             description="folder below BOSUN_CODE_ROOT the command runs in (or give `archive`)")
    archive: str | None = Field(default=None, pattern=ARCHIVE_ID.pattern,
                                description="id of an archive uploaded with POST /api/v1/code (bosun submit --code "
                                            "DIR), unpacked into the job's folder for each attempt (or give `code`)")
    command: list[str] = Field(min_length=1, max_length=200,
                               description="argv, or a string split like a shell; a leading 'python' runs the venv's")
    params: dict[str, Any] = Field(default_factory=dict, description="free parameters; the script reads run.spec")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the script")
    venv: str | None = Field(default=None, max_length=500, description="virtualenv folder below BOSUN_CODE_ROOT")
    seed: int = 0

    @field_validator("code", "venv")
    @classmethod
    def _below_root(cls, value: str | None) -> str | None:
        return None if value is None else relative_code_path(value)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split the command: {exc}") from None
        if isinstance(value, list) and (not value or not str(value[0]).strip()):
            raise ValueError("must name a program")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if name in RESERVED_ENV:
                raise ValueError(f"{name} is set by bosun")
        return env

    @model_validator(mode="after")
    def _one_code_source(self) -> ScriptSpec:
        if (self.code is None) == (self.archive is None):
            raise ValueError("give exactly one of `code` (a folder below BOSUN_CODE_ROOT) and `archive` (an upload)")
        return self

    def code_paths(self) -> list[tuple[str, str]]:
        return ([("code", self.code)] if self.code else []) + ([("venv", self.venv)] if self.venv else [])


def resolve_code(root: Path, rel: str) -> Path:
    """`rel` below `root`, symlinks resolved; ValueError when it escapes or is not a folder."""
    try:
        path = below_root(root, rel)
    except OutsideRoot:
        raise ValueError(f"{rel!r} escapes BOSUN_CODE_ROOT") from None
    if not path.is_dir():
        raise ValueError(f"{rel!r} is not a folder below BOSUN_CODE_ROOT")
    return path
