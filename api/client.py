"""A small Python client of the REST API, for scripts and the CLI."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

FINAL = ("succeeded", "failed", "cancelled")
QUEUE_PAGE = 500
"""The most queue entries one GET /api/v1/queue returns."""


def describe(detail: Any) -> str:
    """An error body's `detail` as text: a FastAPI/pydantic list of errors as `field.path: message` lines."""
    if isinstance(detail, list) and all(isinstance(e, dict) and "msg" in e for e in detail):
        lines = []
        for error in detail:
            loc = [str(part) for part in error.get("loc") or []]
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            lines.append(f"{'.'.join(loc)}: {error['msg']}" if loc else str(error["msg"]))
        return "\n".join(lines)
    return str(detail)


class ApiError(RuntimeError):
    def __init__(self, status: int, detail: Any) -> None:
        text = describe(detail)
        super().__init__(f"HTTP {status}:" + (f"\n{text}" if "\n" in text else f" {text}"))
        self.status = status
        self.detail = detail


class UnreachableError(ApiError):
    """No answer from the API: nothing listens at its URL, or it did not answer in time."""

    def __init__(self, url: str) -> None:
        super().__init__(0, f"cannot reach bosun at {url}: is `bosun serve` running?")
        self.args = (self.detail,)


class DownloadError(ApiError):
    """An artifact that arrived cut short or altered (size or sha256 differ from the server's record)."""

    def __init__(self, detail: str) -> None:
        super().__init__(502, detail)
        self.args = (detail,)


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except ValueError:
        return response.text


def _poll(fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
          late: Callable[[dict[str, Any]], str], *, poll: float, timeout: float | None,
          on_update: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """`fetch()` every `poll` s until `done` says so; TimeoutError with `late`'s message after `timeout` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = fetch()
        on_update(value)
        if done(value):
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(late(value))
        time.sleep(poll)


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                 headers={"Authorization": f"Bearer {token}"} if token else {})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self.http.request(method, path, **kw)
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            raise UnreachableError(str(self.http.base_url).rstrip("/")) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    @staticmethod
    def _job_body(job_type: str, spec: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """A submission's body; options left out or None take the server's defaults (of the job type)."""
        return {"type": job_type, "spec": spec, **{k: v for k, v in options.items() if v is not None}}

    def submit(self, job_type: str, spec: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Submit a job (options: name, priority, depends_on, gpus, max_attempts, max_runtime, tags, notes);
        returns it, queued."""
        return self._call("POST", "/api/v1/jobs", json=self._job_body(job_type, spec, options))

    def upload_code(self, folder: Path) -> dict[str, Any]:
        """Pack `folder` as a .tar.gz (without .git, venvs and caches) and upload it for script jobs;
        returns {id, size, files, unpacked_bytes}, `id` being what a script spec's `archive` names."""
        from shared.code_archives import pack_folder

        return self._call("POST", "/api/v1/code", content=pack_folder(folder),
                          headers={"Content-Type": "application/octet-stream"})

    def validate(self, job_type: str, spec: dict[str, Any], **options: Any) -> dict[str, Any]:
        """Every check of a submission, nothing stored: the job as it would be stored, every default filled in."""
        return self._call("POST", "/api/v1/jobs/validate", json=self._job_body(job_type, spec, options))

    def queue(self, queue: str | None = None, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """A page of the queued jobs in dispatch order, as the last dispatch pass decided:
        {data: [{id, owner, queue, position, reason, ...}], count (all of them), planned_at, running, workers, ...}."""
        params = {"limit": limit, "offset": offset, **({"queue": queue} if queue else {})}
        return self._call("GET", "/api/v1/queue", params=params)

    def whole_queue(self, queue: str | None = None, *, page: int = QUEUE_PAGE, tries: int = 3) -> dict[str, Any]:
        """The whole queue as one dispatch pass decided it: `queue()` with `data` gathered from every page.

        The pages are read from the first again when a pass ran between two of them (`planned_at`
        changed), up to `tries` times; after that the last reading is kept, each job listed once.
        """
        for attempt in range(tries):
            first = self.queue(queue, limit=page)
            entries = {e["id"]: e for e in first["data"]}
            same_pass = True
            for offset in range(page, first["count"], page):
                more = self.queue(queue, limit=page, offset=offset)
                same_pass = same_pass and more["planned_at"] == first["planned_at"]
                if not same_pass and attempt < tries - 1:
                    break
                for entry in more["data"]:
                    entries.setdefault(entry["id"], entry)
            if same_pass:
                break
        return {**first, "data": list(entries.values())}

    def usage(self, days: int = 7) -> dict[str, Any]:
        """GPU-hours per user per day: {data: [{user, day, gpu_hours}], since}."""
        return self._call("GET", "/api/v1/usage", params={"days": days})

    def disk_usage(self, limit: int = 100) -> dict[str, Any]:
        """Bytes in the store: {users: [{user, jobs, total_bytes}], data: [{id, owner, ..., total_bytes}], count}."""
        return self._call("GET", "/api/v1/usage/disk", params={"limit": limit})

    def workers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/v1/workers")

    def drain(self, worker: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/workers/{worker}/drain")

    def undrain(self, worker: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/workers/{worker}/undrain")

    def set_priority(self, job_id: int, priority: int) -> dict[str, Any]:
        return self._call("PATCH", f"/api/v1/jobs/{job_id}/priority", json={"priority": priority})

    def hold(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{job_id}/hold")

    def release(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{job_id}/release")

    def limits(self, user: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/users/{user}/limits")

    def set_limits(self, user: str, **limits: int | str | None) -> dict[str, Any]:
        """Change the limits named (`max_gpus`, `max_queued_jobs`, `max_runtime`: seconds or '90m', '2h', '3d');
        None puts one back to the settings' default, and a limit not named keeps its value."""
        return self._call("PUT", f"/api/v1/users/{user}/limits", json=limits)

    def whoami(self) -> dict[str, Any]:
        """The caller: {user, admin}."""
        return self._call("GET", "/api/v1/notifications/whoami")

    def notifications(self, user: str) -> dict[str, Any]:
        """A user's channels, events and newest messages."""
        return self._call("GET", f"/api/v1/users/{user}/notifications")

    def set_notifications(self, user: str, **changes: Any) -> dict[str, Any]:
        """Change `webhook_url`, `email` or `events`; the fields not given stay, None clears one."""
        return self._call("PUT", f"/api/v1/users/{user}/notifications", json=changes)

    def test_notifications(self, user: str) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/users/{user}/notifications/test")

    def audit(self, *, limit: int = 50, offset: int = 0, action: str | None = None) -> dict[str, Any]:
        """Admin and owner actions, newest first: {data: [{time, actor, action, target, detail}], count}."""
        params = {"limit": limit, "offset": offset, **({"action": action} if action else {})}
        return self._call("GET", "/api/v1/audit", params=params)

    def job(self, job_id: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/jobs/{job_id}")

    def jobs(self, **filters: Any) -> dict[str, Any]:
        return self._call("GET", "/api/v1/jobs", params={k: v for k, v in filters.items() if v is not None})

    def edit(self, job_id: int, **changes: Any) -> dict[str, Any]:
        """Change a job's name, tags (tags, add_tags, remove_tags) or notes; the fields not given stay."""
        return self._call("PATCH", f"/api/v1/jobs/{job_id}", json=changes)

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._call("POST", f"/api/v1/jobs/{job_id}/cancel")

    def rerun(self, job_id: int, changes: dict[str, Any] | None = None, *, max_runtime: int | str | None = None,
              resume: bool | None = None) -> dict[str, Any]:
        """Submit a job's spec again; `changes` ({"dino.lr": 0.0003}) set values at dotted paths of it first.

        `resume`: start from the job's last committed checkpoint (None: the server's default, which
        resumes a failed or cancelled job rerun unchanged); `max_runtime`: a time limit of its own.
        """
        body = {k: v for k, v in (("set", changes), ("max_runtime", max_runtime), ("resume", resume)) if v is not None}
        return self._call("POST", f"/api/v1/jobs/{job_id}/rerun", json=body or None)

    def submit_sweep(self, sweep: dict[str, Any]) -> dict[str, Any]:
        """Submit a sweep ({name?, template, axes, mode?, n?, seed?}); returns it with its queued children."""
        return self._call("POST", "/api/v1/sweeps", json=sweep)

    def sweep(self, sweep_id: int) -> dict[str, Any]:
        """A sweep with its children and its table: {rows: [{point, jobs, status, metrics}], metrics, counts, ...}."""
        return self._call("GET", f"/api/v1/sweeps/{sweep_id}")

    def sweeps(self, **filters: Any) -> dict[str, Any]:
        return self._call("GET", "/api/v1/sweeps", params={k: v for k, v in filters.items() if v is not None})

    def control_sweep(self, sweep_id: int, action: str) -> dict[str, Any]:
        """Cancel, hold or release every child of a sweep (`action`: cancel, hold, release)."""
        return self._call("POST", f"/api/v1/sweeps/{sweep_id}/{action}")

    def wait_sweep(self, sweep_id: int, *, poll: float = 1.0, timeout: float | None = None,
                   on_update: Callable[[dict[str, Any]], None] = lambda sweep: None) -> dict[str, Any]:
        """Poll until every child of the sweep has ended; returns the sweep."""
        return _poll(lambda: self.sweep(sweep_id), lambda sweep: sweep["done"],
                     lambda sweep: f"sweep {sweep_id} not done after {timeout} s: {sweep['counts']}",
                     poll=poll, timeout=timeout, on_update=on_update)

    def logs(self, job_id: int, after: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/logs", params={"after": after})["data"]

    def metrics(self, job_id: int, name: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/metrics", params={"name": name} if name else {})["data"]

    def artifacts(self, job_id: int) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v1/jobs/{job_id}/artifacts")["data"]

    def datasets(self) -> dict[str, Any]:
        """The dataset catalog: {data: [{name, kind, source, splits, classes, details}], count, errors}."""
        return self._call("GET", "/api/v1/datasets")

    def download(self, job_id: int, name: str, target: Path) -> Path:
        """Save an artifact at `target`, checked against its size and sha256; never leaves a partial file.

        The bytes go to a temp file beside `target`, renamed over it only when their size and
        digest match the artifact's (`Content-Length`, `X-Checksum-SHA256`).
        """
        target = Path(target)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with self.http.stream("GET", f"/api/v1/jobs/{job_id}/artifacts/{name}") as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _detail(response))
                expected_size = int(response.headers.get("content-length", -1))
                expected_sha = response.headers.get("x-checksum-sha256", "")
                digest, size = hashlib.sha256(), 0
                with open(tmp, "wb") as fh:
                    for chunk in response.iter_raw():
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            if size != expected_size or digest.hexdigest() != expected_sha:
                raise DownloadError(f"artifact {name!r} of job {job_id} arrived damaged: {size} bytes with sha256 "
                                    f"{digest.hexdigest()[:12]}..., expected {expected_size} bytes with sha256 "
                                    f"{expected_sha[:12]}...; nothing was saved")
            tmp.replace(target)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise UnreachableError(str(self.http.base_url).rstrip("/")) from exc
        except httpx.TransportError as exc:
            raise DownloadError(f"artifact {name!r} of job {job_id}: the transfer broke off ({exc}); "
                                f"nothing was saved") from exc
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def compare(self, job_ids: Sequence[int]) -> dict[str, Any]:
        """Headline metrics of evaluate jobs side by side:
        {columns, rows: [{job, name, status, backbone, source, metrics}]}."""
        return self._call("GET", "/api/v1/compare", params={"jobs": ",".join(str(i) for i in job_ids)})

    def wait(self, job_id: int, *, poll: float = 0.5, timeout: float | None = None,
             on_update: Callable[[dict[str, Any]], None] = lambda job: None) -> dict[str, Any]:
        """Poll until the job reaches a final state; returns the job."""
        return _poll(lambda: self.job(job_id), lambda job: job["status"] in FINAL,
                     lambda job: f"job {job_id} still {job['status']} after {timeout} s",
                     poll=poll, timeout=timeout, on_update=on_update)
