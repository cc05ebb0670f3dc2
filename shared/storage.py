"""The object store: one small interface, a local-folder and an S3/MinIO implementation.

Writes are atomic from a reader's point of view: the local store renames a finished temp file,
S3 makes an object visible only when its upload completes. Checkpoints add a commit marker on
top (see `commit_marker`), so a half-written checkpoint is never loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from shared.prometheus import OBJECT_STORE_ERRORS

CHUNK = 1024 * 1024
T = TypeVar("T")
# S3 error codes that mean "try again later", not "your request is wrong".
_S3_BUSY = ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "ServerBusy")


class ObjectNotFound(KeyError):
    """No object under that key."""


class StoreUnavailable(RuntimeError):
    """The object store cannot be reached."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo: ...
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo: ...
    def iter_chunks(self, key: str) -> Iterator[bytes]: ...
    def get_bytes(self, key: str) -> bytes: ...
    def download(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


def _check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or ".." in parts:
        raise ValueError(f"invalid object key {key!r}")
    return key


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class LocalStore:
    """Objects as files below a root folder (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            size, sha = file_digest(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return ObjectInfo(key, size, sha)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path.read_bytes()

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root
        return sorted(
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".upload-") and p.relative_to(base).as_posix().startswith(prefix)
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise StoreUnavailable(f"object folder {self.root} is not writable")


class S3Store:
    """Objects in an S3 bucket (MinIO in deployment) through the `minio` client."""

    def __init__(self, bucket: str, *, endpoint: str, access_key: str, secret_key: str, secure: bool = False,
                 region: str = "us-east-1", prefix: str = "", retry_seconds: float = 0.0) -> None:
        from minio import Minio
        from urllib3 import PoolManager, Retry, Timeout

        host = endpoint.split("://", 1)[-1]
        secure = secure or endpoint.startswith("https://")
        http = PoolManager(timeout=Timeout(connect=3, read=60), retries=Retry(total=2, backoff_factor=0.2))
        self.client = Minio(host, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=http)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        # A worker rides out an outage this long (shared.retry); the API (0) answers 503 at once.
        self.retry_seconds = retry_seconds

    def _retried(self, op: str, fn: Callable[[], T]) -> T:
        from shared.retry import retry_call

        return retry_call(fn, seconds=self.retry_seconds, transient=_store_outage,
                          what=f"object store {op} on bucket {self.bucket!r}")

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _guard(self, op: str) -> Iterator[None]:
        """Map minio's errors to ours and count failures for the object-store alert."""
        from minio.error import S3Error, ServerError
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(exc.object_name or "") from exc
            OBJECT_STORE_ERRORS.labels(op=op).inc()
            if exc.code in _S3_BUSY:
                raise StoreUnavailable(f"object store bucket {self.bucket!r} busy: {exc.code}") from exc
            raise
        except (ServerError, HTTPError, OSError) as exc:
            OBJECT_STORE_ERRORS.labels(op=op).inc()
            raise StoreUnavailable(f"object store bucket {self.bucket!r} unreachable: {exc}") from exc

    def ensure_bucket(self) -> None:
        def ensure() -> None:
            with self._guard("ensure_bucket"):
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket)

        self._retried("ensure_bucket", ensure)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> ObjectInfo:
        size, sha = file_digest(path)

        def put() -> None:  # each try reads the file from its start
            with self._guard("put"), open(path, "rb") as fh:
                self.client.put_object(self.bucket, self._key(key), fh, length=size, content_type=content_type,
                                       part_size=16 * CHUNK)

        self._retried("put", put)
        return ObjectInfo(key, size, sha)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> ObjectInfo:
        def put() -> None:
            with self._guard("put"):
                self.client.put_object(self.bucket, self._key(key), io.BytesIO(data), length=len(data),
                                       content_type=content_type)

        self._retried("put", put)
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        with self._guard("get"):
            response = self.client.get_object(self.bucket, self._key(key))
        try:
            with self._guard("get"):
                yield from response.stream(CHUNK)
        finally:
            response.close()
            response.release_conn()

    def get_bytes(self, key: str) -> bytes:
        return self._retried("get", lambda: b"".join(self.iter_chunks(key)))

    def download(self, key: str, path: Path) -> None:
        def download() -> None:  # each try writes the file from its start
            with open(path, "wb") as fh:
                for chunk in self.iter_chunks(key):
                    fh.write(chunk)

        self._retried("get", download)

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        def stat() -> bool:
            try:
                with self._guard("stat"):
                    self.client.stat_object(self.bucket, self._key(key))
                return True
            except ObjectNotFound:
                return False
            except S3Error as exc:
                if exc.code == "NotFound":
                    return False
                raise

        return self._retried("stat", stat)

    def list(self, prefix: str) -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix

        def listing() -> list[str]:
            with self._guard("list"):
                objects = self.client.list_objects(self.bucket, prefix=full or None, recursive=True)
                return sorted(o.object_name[strip:] for o in objects)

        return self._retried("list", listing)

    def delete(self, key: str) -> None:
        def delete() -> None:
            with self._guard("delete"):
                self.client.remove_object(self.bucket, self._key(key))

        self._retried("delete", delete)

    def ping(self) -> None:
        with self._guard("ping"):
            if not self.client.bucket_exists(self.bucket):
                raise StoreUnavailable(f"bucket {self.bucket!r} does not exist")


def _store_outage(exc: BaseException) -> bool:
    return isinstance(exc, StoreUnavailable)


def open_store(settings, *, retry_seconds: float = 0.0) -> ObjectStore:
    """The store named by `settings.storage_url` (file://folder or s3://bucket[/prefix]).

    `retry_seconds`: how long a call rides out an outage before it raises (workers pass
    `settings.store_retry_seconds`; the API answers at once).
    """
    url = settings.storage_url
    parts = urlsplit(url)
    if parts.scheme == "file":
        return LocalStore(Path(parts.path))
    if parts.scheme == "s3":
        return S3Store(parts.netloc, prefix=parts.path, endpoint=settings.s3_endpoint,
                       access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                       secure=settings.s3_secure, region=settings.s3_region, retry_seconds=retry_seconds)
    raise ValueError(f"BOSUN_STORAGE_URL: unsupported scheme {parts.scheme!r} (use file:// or s3://)")


def checkpoint_key(job_id: int, step: int) -> str:
    return f"jobs/{job_id}/checkpoints/{step:08d}.pt"


def commit_marker(job_id: int) -> str:
    """Key of the marker naming the newest complete checkpoint; written only after the upload."""
    return f"jobs/{job_id}/checkpoints/latest"


def best_marker(job_id: int) -> str:
    """Key of the marker naming the job's best checkpoint by its policy's metric (shared.checkpoint_policy)."""
    return f"jobs/{job_id}/checkpoints/best"


def job_prefix(job_id: int) -> str:
    """The folder of every object of a job (spec, checkpoints, artifacts)."""
    return f"jobs/{job_id}/"


def artifact_key(job_id: int, name: str) -> str:
    return f"jobs/{job_id}/artifacts/{name}"


def open_chunks(store: ObjectStore, key: str) -> Iterator[bytes]:
    """The object's chunks, opened now: the first chunk is read before this returns.

    A missing object (ObjectNotFound) or an unreachable store (StoreUnavailable) raises here,
    where an HTTP route can still answer 404 or 503, instead of inside a response body whose
    200 and Content-Length are already sent.
    """
    chunks = iter(store.iter_chunks(key))
    first = next(chunks, b"")

    def rest() -> Iterator[bytes]:
        if first:
            yield first
        yield from chunks

    return rest()
