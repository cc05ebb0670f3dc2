"""A real stack: Postgres database, Redis db, moto S3 server, the API under uvicorn, worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.client import Client
from tests.proxy import TcpProxy
from tests.stack import Proc, bosun, moto_server, postgres_database, redis_database, stack_env, start_api, start_worker


@dataclass
class Stack:
    env: dict[str, str]
    url: str
    home: Path
    client: Client
    other: Client
    workers: list[Proc] = field(default_factory=list)
    db_proxy: TcpProxy | None = None
    s3_proxy: TcpProxy | None = None

    def worker(self, name: str = "", metrics_port: int = 0) -> Proc:
        proc = start_worker(self.env, self.home / f"worker-{len(self.workers)}.log", name=name,
                            metrics_port=metrics_port)
        proc.metrics_port = metrics_port
        self.workers.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(w.output()[-4000:] for w in self.workers)


@contextmanager
def running_stack(home: Path, data_root: Path, *, outages: bool = False, broker_url: str | None = None,
                  **settings: str) -> Iterator[Stack]:
    """Postgres, Redis, moto S3 and the API, with users ada (admin) and ben; workers are started by tests.

    `outages=True` puts Postgres and the S3 server behind proxies the test can cut (tests.proxy);
    `broker_url` replaces the shared Redis' test database (a private Redis the test may stop).
    """
    with postgres_database() as db, (nullcontext(broker_url) if broker_url else redis_database()) as broker, \
            moto_server() as s3:
        db_proxy = s3_proxy = None
        if outages:
            db_proxy, db = TcpProxy.in_front_of(db)
            s3_proxy, s3 = TcpProxy.in_front_of(s3)
        bucket = f"bosun-{uuid.uuid4().hex[:8]}"
        env = stack_env(home, database_url=db, broker_url=broker, storage_url=f"s3://{bucket}", s3_endpoint=s3,
                        s3_access_key="stack-access", s3_secret_key="stack-secret-key", data_root=str(data_root),
                        **settings)
        from shared.storage import S3Store

        S3Store(bucket, endpoint=s3, access_key="stack-access", secret_key="stack-secret-key").ensure_bucket()
        bosun(env, "db", "upgrade")
        admin = bosun(env, "users", "add", "ada", "--admin").strip().splitlines()[-1]
        user = bosun(env, "users", "add", "ben").strip().splitlines()[-1]
        api, url = start_api(env, home / "api.log")
        stack = Stack(env, url, home, Client(url, admin), Client(url, user), db_proxy=db_proxy, s3_proxy=s3_proxy)
        try:
            yield stack
        finally:
            for w in stack.workers:
                w.kill()
            api.kill()
            for proxy in (db_proxy, s3_proxy):
                if proxy is not None:
                    proxy.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), data_root) as running:
        yield running
