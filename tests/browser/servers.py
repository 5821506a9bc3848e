"""Both services as real processes on free loopback ports, each with a migrated SQLite file.

Started as a user would (``python -m services.cli serve …`` with the documented environment),
so the browser talks to uvicorn over TCP exactly as it does after ``make run``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.auth import mint_token
from shared.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "browser-test-secret-0123456789abcdef"
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    """A running catalog + attribution pair; ``stop()`` ends both (idempotent)."""

    root: Path
    catalog_url: str
    attribution_url: str
    tenant: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def token(self, *scopes: str, tenant: str | None = None) -> str:
        return mint_token(
            SECRET, tenant or self.tenant, scopes or ("reports:read",), ttl_seconds=3600
        )

    def logs(self) -> str:
        parts = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name} (last 3000 chars) ---\n{text[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_ready(url: str, process: subprocess.Popen[bytes], stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{stack.logs()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {READY_TIMEOUT:.0f}s:\n{stack.logs()}")


def start_stack(root: Path, tenant: str = "browser") -> Stack:
    """Migrate two fresh SQLite databases under ``root`` and start both services."""
    from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS
    from services.catalog.app import MIGRATIONS as CATALOG_MIGRATIONS

    root.mkdir(parents=True, exist_ok=True)
    catalog_db = f"sqlite+aiosqlite:///{root / 'catalog.db'}"
    attribution_db = f"sqlite+aiosqlite:///{root / 'attribution.db'}"
    upgrade(CATALOG_MIGRATIONS, catalog_db)
    upgrade(ATTRIBUTION_MIGRATIONS, attribution_db)
    catalog_port, attribution_port = free_port(), free_port()
    stack = Stack(
        root=root,
        catalog_url=f"http://127.0.0.1:{catalog_port}",
        attribution_url=f"http://127.0.0.1:{attribution_port}",
        tenant=tenant,
    )
    env = {
        **os.environ,
        "CLIPFUNNEL_SECRET": SECRET,
        "CLIPFUNNEL_VAR_DIR": str(root / "var"),
        "CLIPFUNNEL_LOG_LEVEL": "WARNING",
        "CATALOG_DATABASE_URL": catalog_db,
        "ATTRIBUTION_DATABASE_URL": attribution_db,
        "ATTRIBUTION_CATALOG_URL": stack.catalog_url,
        "ATTRIBUTION_PUBLIC_URL": stack.attribution_url,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "services.cli", "serve"]
    try:
        for service, port in (("catalog", catalog_port), ("attribution", attribution_port)):
            with (root / f"{service}.log").open("wb") as log:
                stack.processes.append(
                    subprocess.Popen(
                        [*command, service, "--port", str(port)],
                        cwd=REPO_ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait_ready(stack.catalog_url, stack.processes[0], stack)
        _wait_ready(stack.attribution_url, stack.processes[1], stack)
    except BaseException:
        stack.stop()
        raise
    return stack
