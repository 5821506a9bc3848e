"""Both services as real processes on free loopback ports, each with a migrated SQLite file.

Started by the services' launcher as a user would (``python -m services.cli serve …`` with the
documented environment), so the browser talks to uvicorn over TCP exactly as it does after
``make run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services import launcher
from shared.auth import mint_token

SECRET = "browser-test-secret-0123456789abcdef"


@dataclass
class Stack:
    """A running catalog + attribution pair; ``stop()`` ends both (idempotent)."""

    root: Path
    tenant: str
    services: launcher.Stack

    @property
    def catalog_url(self) -> str:
        return self.services.catalog.url

    @property
    def attribution_url(self) -> str:
        return self.services.attribution.url

    def token(self, *scopes: str, tenant: str | None = None) -> str:
        return mint_token(
            SECRET, tenant or self.tenant, scopes or ("reports:read",), ttl_seconds=3600
        )

    def stop(self) -> None:
        self.services.stop()


def start_stack(root: Path, tenant: str = "browser") -> Stack:
    """Migrate two fresh SQLite databases under ``root`` and start both services."""
    root.mkdir(parents=True, exist_ok=True)
    services = launcher.stack(
        catalog_db=launcher.migrate("catalog", launcher.sqlite_url(root / "catalog.db")),
        attribution_db=launcher.migrate(
            "attribution", launcher.sqlite_url(root / "attribution.db")
        ),
        settings={
            "CLIPFUNNEL_SECRET": SECRET,
            "CLIPFUNNEL_VAR_DIR": str(root / "var"),
            "CLIPFUNNEL_LOG_LEVEL": "WARNING",
        },
        log_dir=root,
    )
    return Stack(root, tenant, services.start())
