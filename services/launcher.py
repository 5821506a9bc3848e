"""Start the services as processes on loopback, wait until they answer, stop them.

One launcher for everything that runs the real services: ``clipfunnel run``, the benchmark, the
operations tests and the browser tests. A service is started as a user starts it
(``python -m services.cli serve NAME --port N``) with the documented environment. Every
process runs in a session of its own, so its process group id is its pid: stopping the group
reaches the workers of a multi-worker server too, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

import httpx

ServiceName = Literal["catalog", "attribution"]
SERVICES: tuple[ServiceName, ...] = ("catalog", "attribution")
LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 60.0
#: What ``python -m`` runs to serve a service (its name and options follow).
SERVE = ("services.cli", "serve")
# Settings of the services (and prometheus-client's multiprocess folder): an isolated launch
# does not inherit them from the caller's shell.
_OWN_PREFIXES = ("CATALOG_", "ATTRIBUTION_", "CLIPFUNNEL_", "PROMETHEUS_")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class LaunchError(RuntimeError):
    """A process exited while starting or did not become ready; the message ends with its log."""


def free_port() -> int:
    """A port of 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def migrate(service: ServiceName, database_url: str) -> str:
    """``alembic upgrade head`` of ``service``'s migrations on ``database_url`` (returned)."""
    from shared.migrate import upgrade

    if service == "catalog":
        from services.catalog.app import MIGRATIONS
    else:
        from services.attribution.app import MIGRATIONS
    upgrade(MIGRATIONS, database_url)
    return database_url


def environment(settings: Mapping[str, str], *, isolated: bool = True) -> dict[str, str]:
    """This process's environment plus ``settings``. Isolated: without the services' own
    settings nor proxies from the caller's shell (a stray ``CLIPFUNNEL_REDIS_URL`` or proxy
    must not reach a test or a benchmark; everything it talks to is on loopback)."""
    env = dict(os.environ)
    if isolated:
        env = {
            key: value
            for key, value in env.items()
            if not key.startswith(_OWN_PREFIXES) and key not in _PROXIES
        }
        env.update({"NO_PROXY": "*", "no_proxy": "*"})
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


def log_tail(path: Path | None, lines: int = 40) -> str:
    if path is None:
        return "(output went to the terminal)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    """A process serving HTTP on a loopback port; ``start`` may be called again after it ends.

    ``log_path``: its output, appended to across starts (None: the caller's terminal).
    """

    name: str
    port: int
    command: Sequence[str]
    env: dict[str, str]
    log_path: Path | None = None
    ready_path: str = "/readyz"
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Server:
        if self.alive():
            raise LaunchError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        output: int | None = None
        if self.log_path is not None:
            with self.log_path.open("ab") as log:
                log.write(f"\n===== start #{self.starts} =====\n".encode())
            output = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output is not None else None,
                start_new_session=True,
            )
        finally:
            if output is not None:
                os.close(output)  # the child has its own copy
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> Server:
        """Until ``ready_path`` answers 200; LaunchError if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    code = self.process.returncode if self.process else None
                    raise LaunchError(
                        f"{self.name} exited with code {code} while starting:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return self
                time.sleep(0.1)
        raise LaunchError(f"{self.name} was not ready after {timeout:.0f}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the server process itself: a crash, no shutdown code runs."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group (a supervisor and its workers), then SIGKILL what stays."""
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

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    @classmethod
    def serving(
        cls,
        name: ServiceName,
        port: int,
        env: dict[str, str],
        log_path: Path | None = None,
        *,
        options: Sequence[str] = (),
        serve: Sequence[str] = SERVE,
        cwd: Path | None = None,
    ) -> Self:
        """Service ``name`` as ``python -m <serve> NAME --host 127.0.0.1 --port PORT <options>``
        (``serve``: another module for a wrapper that takes the same arguments)."""
        command = [sys.executable, "-m", *serve, name, "--host", LOOPBACK, "--port", str(port)]
        return cls(name, port, [*command, *options], env, log_path, cwd=cwd)


@dataclass
class Stack:
    """Both services, attribution reading the catalog's change feed."""

    catalog: Server
    attribution: Server
    servers: list[Server] = field(init=False)

    def __post_init__(self) -> None:
        self.servers = [self.catalog, self.attribution]

    def start(self, timeout: float = READY_TIMEOUT) -> Stack:
        """Start both and wait until both are ready; on any failure stop both and raise."""
        try:
            for server in self.servers:
                server.start()
            for server in self.servers:
                server.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def alive(self) -> bool:
        return all(server.alive() for server in self.servers)

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()


def stack(
    *,
    settings: Mapping[str, str] | None = None,
    catalog_db: str | None = None,
    attribution_db: str | None = None,
    ports: tuple[int | None, int | None] = (None, None),
    log_dir: Path | None = None,
    isolated: bool = True,
) -> Stack:
    """Catalog and attribution on ``ports`` (free ones where None) with one environment:
    ``settings``, the database URLs when given, and each service's URL as the other needs it
    (a setting of the same name in ``settings`` wins)."""
    catalog_port, attribution_port = (port or free_port() for port in ports)
    urls = {
        "ATTRIBUTION_CATALOG_URL": f"http://{LOOPBACK}:{catalog_port}",
        "ATTRIBUTION_PUBLIC_URL": f"http://{LOOPBACK}:{attribution_port}",
    }
    databases = {"CATALOG_DATABASE_URL": catalog_db, "ATTRIBUTION_DATABASE_URL": attribution_db}
    given = {key: url for key, url in databases.items() if url is not None}
    env = environment({**urls, **given, **(settings or {})}, isolated=isolated)

    def log(name: str) -> Path | None:
        return log_dir / f"{name}.log" if log_dir is not None else None

    return Stack(
        Server.serving("catalog", catalog_port, env, log("catalog")),
        Server.serving("attribution", attribution_port, env, log("attribution")),
    )
