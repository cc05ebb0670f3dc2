"""Uploaded code archives of script jobs: a .tar.gz or .zip of a user's folder, stored by content hash.

`POST /api/v1/code` stores an archive under `code/<sha256>` after reading its listing
(`check_archive`), and a script spec names it as `archive: <sha256>`; the job process unpacks
it into its own working folder (`unpack_archive`). Both go through the same member checks, so a
hostile archive is refused at upload and again, should one reach the store another way, in the
worker: no absolute names, no '..', no symbolic links pointing outside the folder, no hard links,
nothing but regular files, folders and such links (no devices, FIFOs), at most
`max_files` members and `max_bytes` unpacked. Extraction writes each file itself, counting
bytes as it goes, so a member lying about its size cannot pass the cap either.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

ARCHIVE_ID = re.compile(r"^[0-9a-f]{64}$")
SKIPPED_WHEN_PACKING = frozenset({".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})
_CHUNK = 1 << 20


class HostileArchive(ValueError):
    """An archive that is not a .tar.gz/.zip, or whose members would escape or overfill its folder."""


@dataclass(frozen=True)
class Member:
    """One entry of an archive: its normalised name, kind ('file', 'dir', 'symlink') and link target."""

    name: str
    kind: str
    size: int
    target: str = ""


@dataclass(frozen=True)
class ArchiveSummary:
    files: int
    unpacked_bytes: int


def archive_key(archive_id: str) -> str:
    """The object-store key of archive `archive_id` (its sha256)."""
    if not ARCHIVE_ID.match(archive_id):
        raise ValueError(f"{archive_id!r} is not an archive id (64 hex digits, the sha256 of the archive)")
    return f"code/{archive_id}"


def _safe_name(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise HostileArchive(f"member {name!r} has an absolute path")
    if ".." in path.parts:
        raise HostileArchive(f"member {name!r} climbs out with '..'")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise HostileArchive(f"member {name!r} has no name")
    return "/".join(parts)


def _check_link(name: str, target: str) -> None:
    """A link inside the folder: its target, relative to the link's folder, must stay below the root."""
    if PurePosixPath(target).is_absolute():
        raise HostileArchive(f"link {name!r} points to the absolute path {target!r}")
    depth = len(PurePosixPath(name).parts) - 1
    for part in PurePosixPath(target).parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            raise HostileArchive(f"link {name!r} points outside the folder ({target!r})")


def _tar_members(tar: tarfile.TarFile) -> Iterator[tuple[Member, tarfile.TarInfo]]:
    for info in tar:
        name = _safe_name(info.name)
        if info.isdir():
            yield Member(name, "dir", 0), info
        elif info.isreg():
            yield Member(name, "file", info.size), info
        elif info.issym():
            _check_link(name, info.linkname)
            yield Member(name, "symlink", 0, info.linkname), info
        elif info.islnk():
            raise HostileArchive(f"member {info.name!r} is a hard link; pack the file itself")
        else:
            raise HostileArchive(f"member {info.name!r} is a device, FIFO or other special file")


def _zip_members(archive: zipfile.ZipFile) -> Iterator[tuple[Member, zipfile.ZipInfo]]:
    for info in archive.infolist():
        name = _safe_name(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            yield Member(name, "dir", 0), info
        elif stat.S_ISLNK(mode):
            if info.file_size > 4096:
                raise HostileArchive(f"link {info.filename!r} has a target of {info.file_size} bytes")
            target = archive.read(info).decode(errors="replace")
            _check_link(name, target)
            yield Member(name, "symlink", 0, target), info
        elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise HostileArchive(f"member {info.filename!r} is a device, FIFO or other special file")
        else:
            yield Member(name, "file", info.file_size), info


def _opened(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        return tarfile.open(path, "r:gz"), _tar_members
    if magic == b"PK\x03\x04" or magic == b"PK\x05\x06":
        return zipfile.ZipFile(path), _zip_members
    raise HostileArchive("not a .tar.gz or .zip archive")


def _walk(path: Path, *, max_bytes: int, max_files: int) -> Iterator[tuple[Member, object, object]]:
    """Every member, checked; raises HostileArchive at the first bad one or past a cap."""
    try:
        archive, members = _opened(path)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise HostileArchive(f"unreadable archive: {exc}") from None
    total = count = 0
    try:
        with archive:
            for member, info in members(archive):
                count += 1
                total += member.size
                if count > max_files:
                    raise HostileArchive(f"more than {max_files} members (BOSUN_MAX_CODE_FILES)")
                if total > max_bytes:
                    raise HostileArchive(f"unpacks to more than {max_bytes} bytes (BOSUN_MAX_CODE_UNPACKED_BYTES)")
                yield member, info, archive
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise HostileArchive(f"unreadable archive: {exc}") from None


def check_archive(path: Path, *, max_bytes: int, max_files: int) -> ArchiveSummary:
    """Read the listing of the archive at `path`; HostileArchive says which member is refused."""
    files = total = 0
    for member, _, _ in _walk(path, max_bytes=max_bytes, max_files=max_files):
        files += member.kind == "file"
        total += member.size
    return ArchiveSummary(files, total)


def _copy_capped(source: IO[bytes], target: Path, budget: int, name: str) -> int:
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise HostileArchive(f"member {name!r} unpacks past the size cap (BOSUN_MAX_CODE_UNPACKED_BYTES)")
            out.write(chunk)
    return written


def unpack_archive(path: Path, dest: Path, *, max_bytes: int, max_files: int) -> ArchiveSummary:
    """Unpack the archive at `path` into the empty or new folder `dest`, checking every member."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    budget, files = max_bytes, 0
    links: list[Member] = []
    for member, info, archive in _walk(path, max_bytes=max_bytes, max_files=max_files):
        target = root / member.name
        if not target.resolve().is_relative_to(root):  # a folder already made a link by an earlier member
            raise HostileArchive(f"member {member.name!r} would be written outside the folder")
        if member.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif member.kind == "symlink":
            links.append(member)  # made last, so no file is written through one
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(info) if isinstance(archive, tarfile.TarFile) else archive.open(info)
            with source:
                budget -= _copy_capped(source, target, budget, member.name)
            files += 1
    for link in links:
        target = root / link.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            raise HostileArchive(f"link {link.name!r} would replace a member")
        target.symlink_to(link.target)
    return ArchiveSummary(files, max_bytes - budget)


def pack_folder(folder: Path) -> bytes:
    """A .tar.gz of `folder`'s contents (names relative to it), leaving out VCS, venv and cache folders."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_WHEN_PACKING)
            linked = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]  # os.walk does not enter them
            for name in sorted(filenames) + linked:
                full = Path(dirpath) / name
                tar.add(full, arcname=str(full.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def archive_digest(path: Path) -> str:
    """The archive's id: the sha256 of its bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_archive(store, archive_id: str, dest: Path, *, max_bytes: int, max_files: int) -> ArchiveSummary:
    """Download archive `archive_id` from the store and unpack it into `dest` (its download removed after)."""
    download = dest.parent / f".{archive_id}.archive"
    store.download(archive_key(archive_id), download)
    try:
        return unpack_archive(download, dest, max_bytes=max_bytes, max_files=max_files)
    finally:
        download.unlink(missing_ok=True)

