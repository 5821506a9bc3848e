"""The body of every service's Alembic env.py (each env.py passes its own metadata)."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool


def run_migrations(target_metadata: MetaData) -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    # What both modes configure alike.
    options: dict[str, Any] = {
        "target_metadata": target_metadata,
        "version_table": config.get_main_option("version_table") or "alembic_version",
        "compare_type": True,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        "render_as_batch": True,
    }
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        _migrate()
        return
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable, options)
        return
    engine = create_engine(url or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection, options)
    engine.dispose()


def _run(connection: object, options: dict[str, Any]) -> None:
    # Both callers pass a Connection; typed object here to keep alembic out of the hint.
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        transaction_per_migration=True,
        **options,
    )
    _migrate()


def _migrate() -> None:
    with context.begin_transaction():
        context.run_migrations()
