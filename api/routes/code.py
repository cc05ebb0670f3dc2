"""Uploaded code archives for script jobs (shared.code_archives): stored by content hash, named by specs."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, SettingsDep, StoreDep
from api.http_errors import AUTHENTICATED, responses
from api.validation import unprocessable
from shared.code_archives import HostileArchive, archive_digest, archive_key, check_archive


class CodeArchivePublic(BaseModel):
    id: str = Field(description="the sha256 of the archive; a script spec names it as `archive`")
    size: int = Field(description="bytes of the archive")
    files: int = Field(description="regular files it holds")
    unpacked_bytes: int = Field(description="bytes of those files once unpacked")


router = APIRouter(prefix="/code", tags=["code"], responses=AUTHENTICATED)

ARCHIVE_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "description": "the bytes of a .tar.gz or .zip",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "responses": {"422": {"description": "the archive is refused: which member, and why",
                          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/"
                                                                                "HTTPValidationError"}}}}}}


def _store_archive(path: Path, *, settings, store) -> CodeArchivePublic:
    """Check the archive's members, then store it under its hash (once: the same bytes are one object)."""
    try:
        summary = check_archive(path, max_bytes=settings.max_code_unpacked_bytes, max_files=settings.max_code_files)
    except HostileArchive as exc:
        raise unprocessable(["archive"], f"archive refused: {exc}") from None
    archive_id = archive_digest(path)
    if not store.exists(archive_key(archive_id)):
        store.put_file(archive_key(archive_id), path, content_type="application/octet-stream")
    return CodeArchivePublic(id=archive_id, size=path.stat().st_size, files=summary.files,
                             unpacked_bytes=summary.unpacked_bytes)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CodeArchivePublic, responses=responses(413),
             openapi_extra=ARCHIVE_BODY)
async def upload_code(request: Request, settings: SettingsDep, store: StoreDep, _user: CurrentUser) -> Any:
    """Store a .tar.gz or .zip of your code, sent as the request body (at most BOSUN_MAX_CODE_ARCHIVE_BYTES);
    a script spec then runs in it with `archive: <id>`. Absolute names, '..', links out of the folder,
    special files and archives past BOSUN_MAX_CODE_UNPACKED_BYTES or BOSUN_MAX_CODE_FILES are refused (422)."""
    with tempfile.TemporaryDirectory(prefix="bosun-upload-") as folder:
        path = Path(folder) / "archive"
        with open(path, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        return await run_in_threadpool(_store_archive, path, settings=settings, store=store)
