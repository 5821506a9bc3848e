"""Each service's Alembic history builds exactly its models, both ways, on SQLite and PostgreSQL.

Parametrised over (migrations, models) pairs: a service is checked as soon as its modules can be
imported, and skipped (that parameter only) until then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, inspect
from sqlalchemy.pool import NullPool

from shared.db import sync_url
from shared.migrate import MigrationSpec, downgrade, head_revision, upgrade
from tests.conftest import DatabaseFactory

PRIMARY_KEY = "<primary key>"


@dataclass(frozen=True)
class Service:
    spec: MigrationSpec
    metadata: MetaData
    # (table, index / constraint name or PRIMARY_KEY) allowed not to start with tenant_id.
    not_tenant_first: frozenset[tuple[str, str]]


# The exceptions to "tenant_id first in every key and index" the README documents (Tenancy).
SERVICES = [
    pytest.param(
        (
            "services.catalog.app",
            "services.catalog.models",
            {
                # The change feed is one cross-tenant log read by sequence number.
                ("changes", PRIMARY_KEY),
                # The public /r/{code} redirect carries no tenant.
                ("tracking_links", "uq_tracking_links_code"),
            },
        ),
        id="catalog",
    ),
    pytest.param(
        (
            "services.attribution.app",
            "services.attribution.models",
            {
                # One row per service: where it is in the catalog change feed.
                ("sync_state", PRIMARY_KEY),
                # The public /r/{code} redirect carries no tenant.
                ("catalog_tracking_links", "uq_catalog_tracking_links_code"),
                # The shop webhook URL carries only the integration id, no tenant.
                ("integrations", "uq_integrations_integration_id"),
                # Replication to the analytic store reads every tenant's uncopied events.
                ("events", "ix_events_analytics_seq"),
                # The outbox of changed orders: one cross-tenant log read by change_id.
                ("analytics_order_changes", PRIMARY_KEY),
                # The buffer's writer tries every tenant's held posts, the oldest first.
                ("held_order_posts", "ix_held_order_posts_held_at"),
            },
        ),
        id="attribution",
    ),
]


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> Service:
    app_module, models_module, exceptions = request.param
    app = pytest.importorskip(app_module)
    models = pytest.importorskip(models_module)
    return Service(app.MIGRATIONS, models.Base.metadata, frozenset(exceptions))


@dataclass
class Migrated:
    service: Service
    url: str
    engine: Engine  # synchronous (sqlite3 / psycopg), as Alembic runs


@pytest.fixture
def migrated(service: Service, make_database: DatabaseFactory) -> Iterator[Migrated]:
    """A fresh database upgraded to head by the service's migrations."""
    url = make_database(service.spec)
    engine = create_engine(sync_url(url), poolclass=NullPool)
    yield Migrated(service, url, engine)
    engine.dispose()


def schema_diff(db: Migrated) -> list[Any]:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "version_table": db.service.spec.version_table},
        )
        return list(compare_metadata(context, db.service.metadata))


def current_revision(db: Migrated) -> str | None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": db.service.spec.version_table}
        )
        return context.get_current_revision()


def test_upgrade_reaches_head_and_matches_the_models(migrated: Migrated) -> None:
    assert current_revision(migrated) == head_revision(migrated.service.spec)
    assert schema_diff(migrated) == []


def test_downgrade_to_base_then_upgrade_again(migrated: Migrated) -> None:
    spec = migrated.service.spec
    downgrade(spec, migrated.url, "base")
    left = set(inspect(migrated.engine).get_table_names()) - {spec.version_table}
    assert left == set(), f"tables left after downgrade to base: {sorted(left)}"
    assert current_revision(migrated) is None

    upgrade(spec, migrated.url)
    assert current_revision(migrated) == head_revision(spec)
    assert schema_diff(migrated) == []


def test_every_key_and_index_starts_with_tenant_id(migrated: Migrated) -> None:
    service = migrated.service
    inspector = inspect(migrated.engine)
    tables = [t for t in inspector.get_table_names() if t != service.spec.version_table]
    assert set(tables) == set(service.metadata.tables)
    offenders: list[str] = []
    seen: set[tuple[str, str]] = set()
    for table in tables:
        keys: list[tuple[str, list[str]]] = [
            (PRIMARY_KEY, list(inspector.get_pk_constraint(table)["constrained_columns"]))
        ]
        keys += [
            (ix["name"] or "?", [c or "<expression>" for c in ix["column_names"]])
            for ix in inspector.get_indexes(table)
        ]
        keys += [
            (uq["name"] or "?", list(uq["column_names"]))
            for uq in inspector.get_unique_constraints(table)
        ]
        for name, columns in keys:
            seen.add((table, name))
            if (table, name) in service.not_tenant_first:
                continue
            if not columns or columns[0] != "tenant_id":
                offenders.append(f"{table}.{name} on {columns}")
    assert offenders == [], "keys/indexes not led by tenant_id: " + "; ".join(offenders)
    # Every exception names a real key, so a stale entry cannot linger unnoticed.
    assert service.not_tenant_first <= seen
