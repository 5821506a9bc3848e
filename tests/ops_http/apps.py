"""Both services' apps, built (routes, OpenAPI) but not started: no database is touched."""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from shared.migrate import MigrationSpec
from tests.conftest import (
    TEST_SECRET,
    Templates,
    _sqlite_template,
    attribution_settings,
    client_for,
)

_UNUSED_DB = "sqlite+aiosqlite:///:memory:"


@functools.cache
def unstarted_apps() -> dict[str, FastAPI]:
    from services.attribution.app import create_app as create_attribution
    from services.catalog.app import create_app as create_catalog
    from services.catalog.settings import CatalogSettings

    var_dir = Path("var")  # never written: both settings get a database URL and the secret
    catalog = create_catalog(
        CatalogSettings(
            database_url=_UNUSED_DB, secret=TEST_SECRET, var_dir=var_dir, environment="test"
        ),
        configure_logs=False,
    )
    attribution = create_attribution(
        attribution_settings(_UNUSED_DB, var_dir),
        catalog_transport=httpx.ASGITransport(app=catalog),
        configure_logs=False,
    )
    return {"catalog": catalog, "attribution": attribution}


@dataclass
class Stack:
    catalog_app: FastAPI
    attribution_app: FastAPI
    catalog: httpx.AsyncClient
    attribution: httpx.AsyncClient


@asynccontextmanager
async def sqlite_stack(
    templates: Templates,
    directory: Path,
    *,
    catalog: dict[str, Any] | None = None,
    attribution: dict[str, Any] | None = None,
) -> AsyncIterator[Stack]:
    """Both services, started, on fresh SQLite copies of the migrated templates, with settings
    overridden (for the tests whose subject is the HTTP layer, not the database)."""
    from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS
    from services.attribution.app import create_app as create_attribution
    from services.catalog.app import MIGRATIONS as CATALOG_MIGRATIONS
    from services.catalog.app import create_app as create_catalog
    from services.catalog.settings import CatalogSettings

    var_dir = directory / "var"
    var_dir.mkdir(exist_ok=True)
    catalog_app = create_catalog(
        CatalogSettings(
            **{
                "database_url": sqlite_copy(templates, CATALOG_MIGRATIONS, directory),
                "secret": TEST_SECRET,
                "var_dir": var_dir,
                "environment": "test",
                "public_url": "http://attribution.test",
                **(catalog or {}),
            }
        ),
        configure_logs=False,
    )
    attribution_app = create_attribution(
        attribution_settings(
            sqlite_copy(templates, ATTRIBUTION_MIGRATIONS, directory),
            var_dir,
            **(attribution or {}),
        ),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        configure_logs=False,
    )
    async with (
        catalog_app.router.lifespan_context(catalog_app),
        attribution_app.router.lifespan_context(attribution_app),
        client_for(catalog_app, "http://catalog.test") as catalog_client,
        client_for(attribution_app, "http://attribution.test") as attribution_client,
    ):
        yield Stack(catalog_app, attribution_app, catalog_client, attribution_client)


def sqlite_copy(templates: Templates, spec: MigrationSpec, directory: Path) -> str:
    target = directory / f"{spec.service}-{uuid.uuid4().hex[:6]}.db"
    shutil.copyfile(_sqlite_template(templates, spec), target)
    return f"sqlite+aiosqlite:///{target}"
