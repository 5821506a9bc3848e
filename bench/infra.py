"""Databases and service processes for one benchmark run.

Every run gets fresh databases (SQLite files in a temporary folder, or PostgreSQL databases
named ``cf_bench_<random>_<role>``) migrated by the real migrations, and the real services
started by the services' launcher (``python -m services.cli serve …``) on free ports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from services.launcher import SERVE, Server, environment, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

Backend = Literal["sqlite", "postgres"]
Role = Literal["catalog", "attribution", "baseline"]

log = logging.getLogger("bench")


class BenchError(RuntimeError):
    """The benchmark could not run (a service died, a database is unreachable, …)."""


# --------------------------------------------------------------------------- databases


@dataclass
class Databases:
    """The fresh databases of one run, and how to reach them."""

    backend: Backend
    workdir: Path
    pg_admin_url: str = DEFAULT_PG_ADMIN_URL
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    created: list[str] = field(default_factory=list)

    def name(self, role: Role) -> str:
        return f"cf_bench_{self.token}_{role}"

    def path(self, role: Role) -> Path:
        """SQLite file of a role."""
        return self.workdir / f"{role}.db"

    def url(self, role: Role) -> str:
        """SQLAlchemy async URL (what the services take)."""
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.path(role)}"
        return f"postgresql+asyncpg://{self._server()}/{self.name(role)}"

    def dsn(self, role: Role) -> str:
        """Plain libpq DSN (asyncpg) of a PostgreSQL role database."""
        return f"postgresql://{self._server()}/{self.name(role)}"

    def _server(self) -> str:
        return self.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0]

    async def create(self, role: Role) -> str:
        if self.backend == "sqlite":
            await asyncio.to_thread(self.path(role).unlink, missing_ok=True)
        else:
            import asyncpg

            conn = await asyncpg.connect(self.pg_admin_url)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.name(role)}"')
                await conn.execute(f'CREATE DATABASE "{self.name(role)}"')
            finally:
                await conn.close()
            self.created.append(self.name(role))
        return self.url(role)

    def _remove_files(self) -> None:
        for role in ("catalog", "attribution", "baseline"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path(role)}{suffix}").unlink(missing_ok=True)

    async def drop_all(self) -> None:
        if self.backend == "sqlite":
            await asyncio.to_thread(self._remove_files)
            return
        import asyncpg

        conn = await asyncpg.connect(self.pg_admin_url)
        try:
            for name in self.created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.created.clear()


async def postgres_reachable(admin_url: str) -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(admin_url), timeout=5)
        await conn.close()
    except Exception as exc:  # any failure means "not reachable"; say which
        return f"{type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------- services


@dataclass
class ServiceProcess(Server):
    """A service of the benchmark; with ``profile_dir`` it runs under ``bench.serve_profiled``,
    which switches cProfile on and off by signal."""

    profile_dir: Path | None = None
    phases: int = 0

    def profile_on(self) -> bool:
        """Start cProfile in the service (only when started with ``profile_dir``)."""
        if self.profile_dir is None or not self.alive():
            return False
        os.kill(self.pid, signal.SIGUSR1)
        return True

    async def profile_off(self, target: Path) -> Path | None:
        """Stop cProfile and move the phase's stats to ``target``."""
        if self.profile_dir is None or not self.alive():
            return None
        os.kill(self.pid, signal.SIGUSR2)
        self.phases += 1
        written = self.profile_dir / f"phase-{self.phases}.prof"
        for _ in range(300):
            if written.exists():
                written.replace(target)
                sql = written.with_suffix(".sql.json")
                if sql.exists():
                    sql.replace(target.with_suffix(".sql.json"))
                return target
            await asyncio.sleep(0.1)
        return None


def service_env(dbs: Databases, secret: str, workdir: Path, catalog_url: str) -> dict[str, str]:
    """The environment both services are started with."""
    return environment(
        {
            "CLIPFUNNEL_SECRET": secret,
            "CLIPFUNNEL_LOG_LEVEL": "WARNING",
            "CLIPFUNNEL_VAR_DIR": str(workdir / "var"),
            "CATALOG_DATABASE_URL": dbs.url("catalog"),
            "ATTRIBUTION_DATABASE_URL": dbs.url("attribution"),
            "ATTRIBUTION_CATALOG_URL": catalog_url,
            # The benchmark measures the service, not its per-token rate limiter.
            "CLIPFUNNEL_RATE_LIMIT_PER_SECOND": "0",
        }
    )


def catalog_service(dbs: Databases, secret: str, workdir: Path) -> ServiceProcess:
    port = free_port()
    env = service_env(dbs, secret, workdir, f"http://127.0.0.1:{port}")
    return ServiceProcess.serving("catalog", port, env, workdir / "catalog.log")


def attribution_service(
    dbs: Databases,
    secret: str,
    workdir: Path,
    catalog_url: str,
    workers: int,
    tag: str,
    profile: bool = False,
) -> ServiceProcess:
    port = free_port()
    env = service_env(dbs, secret, workdir, catalog_url)
    env["ATTRIBUTION_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    if workers > 1:
        # Several workers share one metrics view through prometheus-client's multiprocess mode.
        prom = workdir / f"prometheus-{tag}"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    profile_dir = workdir / f"profile-{tag}" if profile and workers == 1 else None
    if profile_dir is not None:
        env["BENCH_PROFILE_DIR"] = str(profile_dir)
    service = ServiceProcess.serving(
        "attribution",
        port,
        env,
        workdir / f"attribution-{tag}.log",
        options=["--workers", str(workers)] if workers > 1 else [],
        serve=["bench.serve_profiled"] if profile_dir is not None else SERVE,
        cwd=REPO_ROOT,  # bench is not installed: it runs from the repository
    )
    service.profile_dir = profile_dir
    return service


# --------------------------------------------------------------------------- profiling


@dataclass
class Profiler:
    """``py-spy record`` attached to a service for one phase (when py-spy is installed)."""

    pid: int
    output: Path
    rate: int = 100
    process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str | None:
        local = Path(sys.executable).parent / "py-spy"
        return str(local) if local.exists() else shutil.which("py-spy")

    def start(self) -> bool:
        exe = self.executable()
        if exe is None:
            log.warning("py-spy is not installed; no profile (pip install py-spy)")
            return False
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--subprocesses",
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(self.output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.output.with_suffix(".log")).open("wb"),
        )
        time.sleep(0.5)  # let it attach
        return True

    def stop(self) -> Path | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None
        return self.output if self.output.exists() else None


# --------------------------------------------------------------------------- CPU accounting

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: the fields after its closing parenthesis.
    return raw.rsplit(")", 1)[1].split()


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux /proc)."""
    fields = _proc_stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_ticks(pgid: int | None = None, db_name: str | None = None) -> dict[int, int]:
    """utime+stime ticks of the processes in group ``pgid`` (a service and its workers), and
    of the PostgreSQL backends serving database ``db_name`` (Linux /proc; empty elsewhere)."""
    ticks: dict[int, int] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return ticks
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        fields = _proc_stat(pid)
        if fields is None:
            continue
        # fields[0] is the state; pgrp is field 5 of stat (index 2 here); utime/stime 14/15.
        mine = pgid is not None and int(fields[2]) == pgid
        if not mine and db_name is not None and fields[0] != "Z":
            command = _cmdline(pid)
            mine = command.startswith("postgres: ") and f" {db_name} " in command
        if mine:
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


@dataclass
class CpuMeter:
    """CPU seconds a service (and, on PostgreSQL, its database backends) used in a phase.

    On a shared machine wall-clock rates depend on the neighbours; CPU per event does less.
    Processes that exit during the phase are not counted (pooled connections stay)."""

    pgid: int | None
    db_name: str | None = None
    _service: dict[int, int] = field(default_factory=dict)
    _db: dict[int, int] = field(default_factory=dict)

    def start(self) -> None:
        self._service = cpu_ticks(self.pgid) if self.pgid is not None else {}
        self._db = cpu_ticks(None, self.db_name) if self.db_name else {}

    def stop(self) -> tuple[float, float | None]:
        """(service CPU seconds, database CPU seconds or None on SQLite)."""
        service = cpu_ticks(self.pgid) if self.pgid is not None else {}
        used = sum(t - self._service.get(pid, 0) for pid, t in service.items())
        if not self.db_name:
            return used / _TICKS, None
        db = cpu_ticks(None, self.db_name)
        db_used = sum(t - self._db.get(pid, 0) for pid, t in db.items())
        return used / _TICKS, db_used / _TICKS
