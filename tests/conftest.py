"""Test fixtures: every test gets fresh databases built by the real migrations.

Each test runs once on SQLite and once on PostgreSQL (``db_backend``). The schema is migrated
once per session into a template (a file on SQLite, a template database on PostgreSQL) and
each test gets its own copy, so tests are isolated without re-running migrations each time.
PostgreSQL tests are skipped when no server answers, unless ``CLIPFUNNEL_REQUIRE_POSTGRES=1``
(set by CI), which turns an unreachable server into a failure.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg import sql

from shared.auth import mint_token
from shared.migrate import MigrationSpec, upgrade

TEST_SECRET = "test-secret-0123456789abcdef"
#: The embedded analytic store of this test process (chdb opens one data directory each).
_ANALYTICS_DIR = Path(tempfile.mkdtemp(prefix="clipfunnel-analytics-"))
PG_ADMIN_URL = os.environ.get(
    "CLIPFUNNEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("CLIPFUNNEL_REQUIRE_POSTGRES") == "1"

_pg_checked: bool | None = None


def postgres_available() -> bool:
    global _pg_checked
    if _pg_checked is None:
        try:
            with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_checked = True
        except psycopg.Error:
            _pg_checked = False
    return _pg_checked


def _pg_url(dbname: str, driver: str = "asyncpg") -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    base = base.replace("postgresql://", f"postgresql+{driver}://", 1)
    return f"{base}/{dbname}"


def _pg_admin(statement: sql.Composed) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@dataclass
class Templates:
    """Migrated template databases, built lazily once per session."""

    root: Path
    sqlite: dict[str, Path]
    postgres: dict[str, str]


class _Dropper:
    """Drops finished tests' PostgreSQL databases on a background thread.

    DROP DATABASE waits for a checkpoint and can take seconds on a busy machine; doing it off
    the test's critical path lets the next test start at once.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="pg-dropper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            with contextlib.suppress(psycopg.Error):
                _pg_admin(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def drop(self, name: str) -> None:
        self._queue.put(name)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=600)


@pytest.fixture(scope="session")
def _dropper() -> Iterator[_Dropper]:
    dropper = _Dropper()
    yield dropper
    dropper.close()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory, _dropper: _Dropper) -> Iterator[Templates]:
    templates = Templates(tmp_path_factory.mktemp("templates"), {}, {})
    yield templates
    for name in templates.postgres.values():
        _dropper.drop(name)


def _sqlite_template(templates: Templates, spec: MigrationSpec) -> Path:
    if spec.service not in templates.sqlite:
        path = templates.root / f"{spec.service}.db"
        upgrade(spec, f"sqlite+aiosqlite:///{path}")
        templates.sqlite[spec.service] = path
    return templates.sqlite[spec.service]


def _postgres_template(templates: Templates, spec: MigrationSpec) -> str:
    if spec.service not in templates.postgres:
        name = f"cf_tmpl_{spec.service}_{uuid.uuid4().hex[:8]}"
        _pg_admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        upgrade(spec, _pg_url(name))
        templates.postgres[spec.service] = name
    return templates.postgres[spec.service]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    if backend == "postgres" and not postgres_available():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")
    return backend


DatabaseFactory = Callable[[MigrationSpec], str]


@pytest.fixture
def make_database(
    db_backend: str, _templates: Templates, _dropper: _Dropper, tmp_path: Path
) -> Iterator[DatabaseFactory]:
    """Returns a function giving a fresh, migrated database URL for a service."""
    created: list[str] = []

    def factory(spec: MigrationSpec) -> str:
        if db_backend == "sqlite":
            template = _sqlite_template(_templates, spec)
            target = tmp_path / f"{spec.service}-{uuid.uuid4().hex[:6]}.db"
            shutil.copyfile(template, target)
            return f"sqlite+aiosqlite:///{target}"
        template_name = _postgres_template(_templates, spec)
        name = f"cf_test_{spec.service}_{uuid.uuid4().hex[:10]}"
        _pg_admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_name)
            )
        )
        created.append(name)
        return _pg_url(name)

    yield factory
    for name in created:
        _dropper.drop(name)


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token() -> TokenFactory:
    def factory(tenant: str, *scopes: str, ttl: int | None = None) -> str:
        return mint_token(TEST_SECRET, tenant, scopes or ("admin",), ttl_seconds=ttl)

    return factory


@pytest.fixture
def admin_token(make_token: TokenFactory, tenant: str) -> str:
    """An admin token of the test's tenant."""
    return make_token(tenant, "admin")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def tenant() -> str:
    return new_tenant()


def client_for(app: FastAPI, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """``app`` with its lifespan started, and stopped on leaving."""
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
async def catalog_app(make_database: DatabaseFactory, var_dir: Path) -> AsyncIterator[FastAPI]:
    from services.catalog.app import MIGRATIONS, create_app
    from services.catalog.settings import CatalogSettings

    settings = CatalogSettings(
        database_url=make_database(MIGRATIONS),
        secret=TEST_SECRET,
        var_dir=var_dir,
        environment="test",
        public_url="http://attribution.test",
    )
    async with running(create_app(settings, configure_logs=False)) as app:
        yield app


@pytest.fixture
async def catalog(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(catalog_app, "http://catalog.test") as client:
        yield client


def attribution_settings(database_url: str, var_dir: Path, **overrides: Any) -> Any:
    from services.attribution.config import AttributionSettings

    values: dict[str, Any] = {
        "database_url": database_url,
        "secret": TEST_SECRET,
        "var_dir": var_dir,
        "environment": "test",
        "catalog_url": "http://catalog.test",
        "public_url": "http://attribution.test",
        # Tests pull the feed explicitly (POST /v1/sync) unless they test the loop itself.
        "sync_enabled": False,
        "sync_interval_seconds": 0.05,
        "sync_max_backoff_seconds": 0.2,
        # One embedded analytic store per test process; a database of its own per app.
        "analytics_path": _ANALYTICS_DIR,
        "clickhouse_database": f"test_{uuid.uuid4().hex[:16]}",
    }
    values.update(overrides)
    return AttributionSettings(**values)


@pytest.fixture
async def attribution_app(
    make_database: DatabaseFactory, var_dir: Path, catalog_app: FastAPI
) -> AsyncIterator[FastAPI]:
    from services.attribution.app import MIGRATIONS, create_app

    settings = attribution_settings(make_database(MIGRATIONS), var_dir)
    transport = httpx.ASGITransport(app=catalog_app)
    app = create_app(settings, catalog_transport=transport, configure_logs=False)
    async with running(app):
        yield app


@pytest.fixture
async def attribution(attribution_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(attribution_app, "http://attribution.test") as client:
        yield client
