"""Operations tests: real service processes on loopback, real Prometheus, real PostgreSQL.

Every test here starts actual ``python -m services.cli serve …`` subprocesses (and, depending
on the test, Prometheus or a throwaway PostgreSQL cluster) on free ports of 127.0.0.1, bounds
every wait, and stops every process it started, by its own id, when it ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest

from shared.auth import mint_token
from shared.migrate import upgrade
from tests.conftest import TEST_SECRET

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("catalog", "attribution")
READY_TIMEOUT = 40.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "ops: starts real processes (services, Prometheus, PostgreSQL) on loopback"
    )


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrations_for(service: str) -> Any:
    if service == "catalog":
        from services.catalog.app import MIGRATIONS

        return MIGRATIONS
    from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS

    return ATTRIBUTION_MIGRATIONS


def migrate(service: str, database_url: str) -> str:
    upgrade(migrations_for(service), database_url)
    return database_url


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def token(tenant: str, *scopes: str) -> str:
    return mint_token(TEST_SECRET, tenant, list(scopes), ttl_seconds=3600)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- service processes -------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """One ``clipfunnel serve`` process (or uvicorn supervisor and its workers) on loopback.

    It runs in its own session, so its process group id is its pid: ``stop`` reaches the
    workers of a multi-worker server too, and nothing else.
    """

    service: str
    port: int
    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: TextIO | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServiceProcess:
        assert not self.alive(), f"{self.service} is already running"
        if self._log is None:
            self._log = self.log_path.open("a")
        self.starts += 1
        self._log.write(f"\n===== start #{self.starts} =====\n")
        self._log.flush()
        command = [
            sys.executable,
            "-m",
            "services.cli",
            "serve",
            self.service,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.args,
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise AssertionError(
                        f"{self.service} exited with code "
                        f"{self.process.returncode if self.process else None} while starting:\n"
                        + log_tail(self.log_path)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + path).status_code == 200:
                        return
                time.sleep(0.1)
        raise AssertionError(
            f"{self.service} not ready after {timeout:.0f}s:\n" + log_tail(self.log_path)
        )

    def kill(self) -> None:
        """SIGKILL the server process itself (a crash: no shutdown code runs)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group (supervisor and workers), SIGKILL what stays."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        # Workers of a supervisor killed hard would linger in the group: end them too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Launcher:
    """Builds environments and starts services; ``close`` stops every process it started."""

    root: Path
    started: list[ServiceProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CATALOG_", "ATTRIBUTION_", "CLIPFUNNEL_", "PROMETHEUS_"))
        }
        var_dir = self.root / "var"
        var_dir.mkdir(exist_ok=True)
        env.update(
            {
                "CLIPFUNNEL_SECRET": TEST_SECRET,
                "CLIPFUNNEL_VAR_DIR": str(var_dir),
                "CLIPFUNNEL_ENV": "test",
                "CLIPFUNNEL_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                # These tests drive one token hard on purpose; rate limits are tested elsewhere.
                "CLIPFUNNEL_RATE_LIMIT_PER_SECOND": "0",
                # Nothing here may reach beyond loopback.
                "NO_PROXY": "*",
                "no_proxy": "*",
            }
        )
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
            env.pop(key, None)
        env.update(extra)
        return env

    def service(
        self,
        service: str,
        *,
        database_url: str,
        catalog_url: str | None = None,
        port: int | None = None,
        workers: int = 1,
        sync: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> ServiceProcess:
        """A configured (not yet started) service on a free loopback port."""
        assert service in SERVICES
        port = port or free_port()
        prefix = service.upper()
        env = self.env(
            **{
                f"{prefix}_DATABASE_URL": database_url,
                # Attribution pulls the catalog feed from here (a dead port when absent).
                "ATTRIBUTION_CATALOG_URL": catalog_url or f"http://127.0.0.1:{free_port()}",
                "ATTRIBUTION_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "ATTRIBUTION_SYNC_ENABLED": "true" if sync else "false",
                "ATTRIBUTION_SYNC_INTERVAL_SECONDS": "0.5",
                "ATTRIBUTION_SYNC_MAX_BACKOFF_SECONDS": "2",
                **(extra_env or {}),
            }
        )
        args = ["--workers", str(workers)] if workers > 1 else []
        process = ServiceProcess(
            service=service,
            port=port,
            env=env,
            log_path=self.root / f"{service}-{port}.log",
            args=args,
        )
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.started):
            process.close()


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


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
