"""Building blocks of the services' Alembic revisions.

A revision runs again on every fresh database, so what it builds must never change: once a
revision calls a helper here, that helper keeps its output for good. A new shape gets a new
helper (or a new argument whose default keeps the old output), never an edit of an old one.
``tests/test_migrations.py`` checks every service's history against its models, both ways, on
SQLite and PostgreSQL.

Columns are NOT NULL unless ``nullable=True`` (most are). Keys and indexes carry the names the
naming convention of ``shared.db`` gives them, marked final with ``op.f`` so they are used as
they stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from shared.db import JSONDoc, MoneyType, UTCDateTime

Column = sa.Column[Any]


# ---------------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------------


def column(
    name: str, type_: sa.types.TypeEngine[Any], *, nullable: bool = False, **kw: Any
) -> Column:
    return sa.Column(name, type_, nullable=nullable, **kw)


def string(name: str, length: int = 128, *, nullable: bool = False) -> Column:
    """A ``VARCHAR``; 128 is the length of every id (a tenant's, a client's, an event's…)."""
    return column(name, sa.String(length=length), nullable=nullable)


def text(name: str, *, nullable: bool = False) -> Column:
    return column(name, sa.Text(), nullable=nullable)


def integer(name: str, *, nullable: bool = False, **kw: Any) -> Column:
    return column(name, sa.Integer(), nullable=nullable, **kw)


def big_integer(name: str, *, nullable: bool = False) -> Column:
    return column(name, sa.BigInteger(), nullable=nullable)


def utc_datetime(name: str, *, nullable: bool = False) -> Column:
    return column(name, UTCDateTime(), nullable=nullable)


def money(name: str, *, nullable: bool = False) -> Column:
    return column(name, MoneyType(), nullable=nullable)


def json_doc(name: str, *, nullable: bool = False) -> Column:
    return column(name, JSONDoc(), nullable=nullable)


def timestamps() -> list[Column]:
    """``created_at`` and ``updated_at``."""
    return [utc_datetime("created_at"), utc_datetime("updated_at")]


def audit_columns() -> list[Column]:
    """What every catalog table ends with: its timestamps and the soft-delete marker."""
    return [*timestamps(), utc_datetime("deleted_at", nullable=True)]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def primary_key(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def tenant_table(name: str, key: Sequence[Column], *columns: SchemaItem) -> None:
    """Create a tenant's table: ``tenant_id``, then the ``key`` columns, lead its columns and
    make its primary key."""
    op.create_table(
        name,
        string("tenant_id"),
        *key,
        *columns,
        primary_key(name, "tenant_id", *(c.name for c in key)),
    )


def drop_tables(*names: str) -> None:
    """Drop tables in the order given (their indexes go with them)."""
    for name in names:
        op.drop_table(name)


def revoked_tokens_table() -> None:
    """Each service's ``revoked_tokens`` (``shared.db.RevokedTokenColumns``)."""
    tenant_table("revoked_tokens", [string("token_id", 64)], utc_datetime("revoked_at"))


# ---------------------------------------------------------------------------------------------
# Changes to existing tables
# ---------------------------------------------------------------------------------------------


def add_columns(table: str, *columns: Column) -> None:
    """Add columns in one batch (SQLite adds them in place, as PostgreSQL does)."""
    with op.batch_alter_table(table) as batch:
        for added in columns:
            batch.add_column(added)


def drop_columns(table: str, *names: str) -> None:
    """Drop columns in one batch (SQLite rebuilds the table once)."""
    with op.batch_alter_table(table) as batch:
        for name in names:
            batch.drop_column(name)


def index_name(table: str, columns: Sequence[str]) -> str:
    return op.f(f"ix_{table}_{'_'.join(columns)}")


def create_index(table: str, *columns: str, name: str | None = None, unique: bool = False) -> None:
    """An index named by the convention (``ix_<table>_<columns>``) unless ``name`` is given."""
    op.create_index(name or index_name(table, columns), table, list(columns), unique=unique)


def drop_index(table: str, *columns: str, name: str | None = None) -> None:
    op.drop_index(name or index_name(table, columns), table_name=table)


# ---------------------------------------------------------------------------------------------
# The catalog objects' columns, as the catalog's first revision made them and the attribution
# read model mirrors them (``shared.catalog_columns`` holds their models).
# ---------------------------------------------------------------------------------------------


def client_key() -> list[Column]:
    """The key of a catalog object (after the tenant): the id its client chose."""
    return [string("id")]


def account_columns() -> list[Column]:
    return [
        string("platform", 32),
        string("handle", 256),
        string("display_name", 256, nullable=True),
    ]


def ad_columns() -> list[Column]:
    return [
        string("campaign_id"),
        string("content_id"),
        string("product_id", nullable=True),
        string("format", 16),
        string("name", 256, nullable=True),
    ]


def ad_spend_key() -> list[Column]:
    """One ad's spend on one day (the day in the tenant's timezone)."""
    return [string("ad_id"), column("day", sa.Date())]


def ad_spend_columns() -> list[Column]:
    return [money("amount"), string("currency", 3)]


def content_columns() -> list[Column]:
    return [
        string("kind", 16),
        string("account_id"),
        string("title", 512),
        utc_datetime("published_at", nullable=True),
        utc_datetime("started_at", nullable=True),
        utc_datetime("ended_at", nullable=True),
        integer("duration_seconds", nullable=True),
        json_doc("topics", nullable=True),
        string("format", 64, nullable=True),
    ]


def content_product_key() -> list[Column]:
    """A product shown in a content."""
    return [string("content_id"), string("product_id")]


def content_product_columns() -> list[Column]:
    return [
        string("placement", 32),
        utc_datetime("starts_at", nullable=True),
        utc_datetime("ends_at", nullable=True),
    ]


def product_columns(*, url: bool) -> list[Column]:
    """The catalog's product columns; the read model keeps no ``url``."""
    return [
        string("title", 512),
        money("price"),
        string("currency", 3),
        *([string("url", 2048, nullable=True)] if url else []),
        string("category", 256, nullable=True),
    ]


def link_target_columns() -> list[Column]:
    """What a tracking link leads to (its code and destination are each service's own)."""
    return [
        string("content_id"),
        string("product_id", nullable=True),
        string("ad_id", nullable=True),
    ]


# ---------------------------------------------------------------------------------------------
# Attribution
# ---------------------------------------------------------------------------------------------


def event_type_and_time() -> list[Column]:
    """What an event was and when: ``events`` has them, as does each table of one row per event
    (keyed by its ``event_id``)."""
    return [string("type", 16), utc_datetime("occurred_at")]
