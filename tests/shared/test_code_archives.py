"""Uploaded code archives (shared.code_archives): packing, unpacking, and the hostile archives refused."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from shared.code_archives import HostileArchive, check_archive, pack_folder, unpack_archive

CAPS = {"max_bytes": 1 << 20, "max_files": 100}


def tar_gz(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    path = tmp_path / "archive.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_a_packed_folder_unpacks_alike_without_git_and_caches(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print('hi')\n")
    (src / "pkg" / "model.py").write_text("W = 1\n")
    (src / "pkg" / "latest").symlink_to("model.py")
    for skipped in (".git", "__pycache__"):
        (src / skipped).mkdir()
        (src / skipped / "junk").write_text("x")
    archive = tmp_path / "code.tar.gz"
    archive.write_bytes(pack_folder(src))
    out = tmp_path / "out"
    summary = unpack_archive(archive, out, **CAPS)
    assert summary.files == 2
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["pkg", "pkg/latest", "pkg/model.py",
                                                                        "train.py"]
    assert (out / "pkg" / "latest").read_text() == "W = 1\n" and (out / "pkg" / "latest").is_symlink()


@pytest.mark.parametrize(("members", "reason"), [
    ([(entry("/etc/cron.d/evil"), b"x")], "absolute path"),
    ([(entry("../outside.py"), b"x")], "climbs out with '..'"),
    ([(entry("pkg/../../outside.py"), b"x")], "climbs out with '..'"),
    ([(entry("escape", tarfile.SYMTYPE, "../../etc/passwd"), None)], "points outside the folder"),
    ([(entry("abs", tarfile.SYMTYPE, "/etc/passwd"), None)], "absolute path '/etc/passwd'"),
    ([(entry("a"), b"x"), (entry("b", tarfile.LNKTYPE, "a"), None)], "hard link"),
    ([(entry("null", tarfile.CHRTYPE), None)], "device, FIFO or other special file"),
    ([(entry("pipe", tarfile.FIFOTYPE), None)], "device, FIFO or other special file"),
])
def test_hostile_tar_members_are_refused_and_nothing_escapes(tmp_path: Path, members, reason: str) -> None:
    archive = tar_gz(tmp_path, *members)
    with pytest.raises(HostileArchive, match=reason):
        check_archive(archive, **CAPS)
    with pytest.raises(HostileArchive, match=reason):
        unpack_archive(archive, tmp_path / "job" / "code", **CAPS)
    assert not (tmp_path / "outside.py").exists() and not (tmp_path / "job" / "outside.py").exists()


def test_no_file_is_written_through_a_link_of_the_archive(tmp_path: Path) -> None:
    """A link listed first and a file below it: links are made last, so the file lands in a real
    folder and the link, which would replace that folder, is refused."""
    archive = tar_gz(tmp_path, (entry("pkg", tarfile.SYMTYPE, "inner"), None), (entry("pkg/x.py"), b"x"))
    with pytest.raises(HostileArchive, match="link 'pkg' would replace a member"):
        unpack_archive(archive, tmp_path / "out", **CAPS)
    assert not (tmp_path / "out" / "inner").exists() and (tmp_path / "out" / "pkg" / "x.py").is_file()


def test_archives_past_the_caps_are_refused(tmp_path: Path) -> None:
    big = tar_gz(tmp_path, (entry("zeros"), bytes(2 << 20)))
    with pytest.raises(HostileArchive, match="more than 1048576 bytes"):
        check_archive(big, **CAPS)
    with pytest.raises(HostileArchive, match="more than 1048576 bytes"):
        unpack_archive(big, tmp_path / "out", **CAPS)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(101):
            archive.writestr(f"f{i}.py", "")
    with pytest.raises(HostileArchive, match="more than 100 members"):
        check_archive(many, **CAPS)


def test_zip_members_are_checked_like_tar_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.py", "print(1)\n")
    assert unpack_archive(good, tmp_path / "out", **CAPS).files == 1
    assert (tmp_path / "out" / "train.py").read_text() == "print(1)\n"
    for name, reason in (("../evil.py", "'..'"), ("/abs.py", "absolute"), ("C:/win.py", "absolute")):
        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr(name, "x")
        with pytest.raises(HostileArchive, match=reason):
            check_archive(bad, **CAPS)
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as archive:
        info = zipfile.ZipInfo("escape")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "../../home")
    with pytest.raises(HostileArchive, match="points outside the folder"):
        check_archive(link, **CAPS)


def test_what_is_no_archive_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(HostileArchive, match="not a .tar.gz or .zip"):
        check_archive(junk, **CAPS)
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(pack_folder(Path(__file__).parent)[:200])
    with pytest.raises(HostileArchive, match="unreadable archive"):
        check_archive(truncated, **CAPS)
