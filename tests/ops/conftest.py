"""Operations tests: real service processes on loopback, real Prometheus, real PostgreSQL.

Every test here starts actual ``python -m services.cli serve …`` subprocesses through the
services' launcher (and, depending on the test, Prometheus or a throwaway PostgreSQL cluster)
on free ports of 127.0.0.1, bounds every wait, and stops every process it started, by its own
id, when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.launcher import (
    SERVE,
    LaunchError,
    Server,
    ServiceName,
    environment,
    free_port,
    log_tail,
)
from shared.auth import mint_token
from tests.conftest import TEST_SECRET
from tests.nats_support import delete_stream, require_nats, stream_name


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ops: starts real processes (services, Prometheus, PostgreSQL) on loopback"
    )


def token(tenant: str, *scopes: str) -> str:
    return mint_token(TEST_SECRET, tenant, list(scopes), ttl_seconds=3600)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# --- service processes -------------------------------------------------------------------------


@dataclass
class Launcher:
    """Configures services on free loopback ports; ``close`` stops every one it made."""

    root: Path
    started: list[Server] = field(default_factory=list)

    def service(
        self,
        service: ServiceName,
        *,
        database_url: str,
        catalog_url: str | None = None,
        port: int | None = None,
        workers: int = 1,
        sync: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> Server:
        """A configured (not yet started) service."""
        port = port or free_port()
        env = self._env(service, database_url, port, catalog_url, sync, extra_env)
        options = ["--workers", str(workers)] if workers > 1 else []
        log_path = self.root / f"{service}-{port}.log"
        server = Server.serving(service, port, env, log_path, options=options)
        self.started.append(server)
        return server

    def ingest_worker(
        self, *, database_url: str, extra_env: dict[str, str] | None = None
    ) -> WriterProcess:
        """A configured (not yet started) ``clipfunnel serve ingest-worker``."""
        port = free_port()  # not listened on: the writer serves no HTTP
        env = self._env("attribution", database_url, port, None, False, extra_env)
        command = [sys.executable, "-m", *SERVE, "ingest-worker"]
        log_path = self.root / f"ingest-worker-{port}.log"
        worker = WriterProcess("ingest-worker", port, command, env, log_path)
        self.started.append(worker)
        return worker

    def _env(
        self,
        service: ServiceName,
        database_url: str,
        port: int,
        catalog_url: str | None,
        sync: bool,
        extra_env: dict[str, str] | None,
    ) -> dict[str, str]:
        var_dir = self.root / "var"
        var_dir.mkdir(exist_ok=True)
        return environment(
            {
                "CLIPFUNNEL_SECRET": TEST_SECRET,
                "CLIPFUNNEL_VAR_DIR": str(var_dir),
                "CLIPFUNNEL_ENV": "test",
                "CLIPFUNNEL_LOG_LEVEL": "INFO",
                # These tests drive one token hard on purpose; rate limits are tested elsewhere.
                "CLIPFUNNEL_RATE_LIMIT_PER_SECOND": "0",
                f"{service.upper()}_DATABASE_URL": database_url,
                # Attribution pulls the catalog feed from here (a dead port when absent).
                "ATTRIBUTION_CATALOG_URL": catalog_url or f"http://127.0.0.1:{free_port()}",
                "ATTRIBUTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "ATTRIBUTION_SYNC_ENABLED": "true" if sync else "false",
                "ATTRIBUTION_SYNC_INTERVAL_SECONDS": "0.5",
                "ATTRIBUTION_SYNC_MAX_BACKOFF_SECONDS": "2",
                **(extra_env or {}),
            }
        )

    def close(self) -> None:
        for server in reversed(self.started):
            server.stop()


@dataclass
class WriterProcess(Server):
    """``clipfunnel serve ingest-worker``: the ingest buffer's writer alone, without HTTP.

    It has nothing to poll: it counts as ready once it has stayed up for a moment (a bad
    configuration makes it exit at once)."""

    def wait_ready(self, timeout: float = 5.0) -> Server:
        time.sleep(min(0.5, timeout))
        if not self.alive():
            code = self.process.returncode if self.process else None
            raise LaunchError(f"{self.name} exited with code {code}:\n{self.tail()}")
        return self


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@contextlib.contextmanager
def own_stream() -> Iterator[str]:
    """A JetStream stream of the test's own (skipped, or failed in CI, without NATS)."""
    require_nats()
    name = stream_name()
    try:
        yield name
    finally:
        asyncio.run(delete_stream(name))


@pytest.fixture
def stream() -> Iterator[str]:
    with own_stream() as name:
        yield name


@pytest.fixture(params=[False, True], ids=["direct", "buffered"])
def buffered(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (direct posts), or the JetStream stream of a run with the ingest buffer on."""
    if not request.param:
        yield None
        return
    with own_stream() as name:
        yield name


# --- events ----------------------------------------------------------------------------------

EVENT_TYPES = ("impression", "view", "view_complete", "like", "click", "share")
EVENT_TIME = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(microsecond=0)


def make_event(event_id: str, number: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": EVENT_TYPES[number % len(EVENT_TYPES)],
        "occurred_at": (EVENT_TIME + dt.timedelta(seconds=number % 3600)).isoformat(),
        "user_id": f"u-{number % 97}",
        "content_id": f"c-{number % 5}",
        "platform": "tiktok",
        "properties": {"watch_seconds": number % 30},
    }


def make_events(prefix: str, start: int, count: int) -> list[dict[str, Any]]:
    return [make_event(f"{prefix}-{n:06d}", n) for n in range(start, start + count)]


# --- a throwaway PostgreSQL cluster -------------------------------------------------------------

REQUIRE_PG = os.environ.get("CLIPFUNNEL_REQUIRE_POSTGRES") == "1"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL binaries folder holding initdb and pg_ctl."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    return None


@dataclass
class PgCluster:
    """A PostgreSQL cluster of its own in a temporary folder, on a free loopback port.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    (its folder sits outside pytest's root-only tmp_path, so that user can reach it).
    """

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *command: str, timeout: float = 60.0) -> None:
        argv = list(command)
        if self.run_as is not None:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log_tail(self.log_path)}"
            )

    def init(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    def start(self) -> None:
        # fsync off is safe here: a process crash (stop -m immediate) keeps what was written to
        # the OS; synchronous_commit stays on, or acknowledged commits could be lost.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off "
            "-c full_page_writes=off"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A fresh, running cluster; skipped when initdb is missing unless PostgreSQL is required."""
    bin_dir = postgres_bin()
    run_as: str | None = None
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
            run_as = "postgres"
        except KeyError:
            bin_dir = None
        if shutil.which("runuser") is None:
            bin_dir = None
    if bin_dir is None:
        if REQUIRE_PG:
            pytest.fail("initdb/pg_ctl (and, as root, a `postgres` user) are required")
        pytest.skip("no initdb/pg_ctl to start a throwaway PostgreSQL cluster")
    root = Path(tempfile.mkdtemp(prefix="clipfunnel-pg-"))
    if run_as is not None:
        shutil.chown(root, user=run_as, group=None)
        root.chmod(0o700)
    cluster = PgCluster(bin_dir=bin_dir, root=root, port=free_port(), run_as=run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
