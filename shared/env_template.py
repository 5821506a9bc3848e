"""The body of every service's Alembic env.py (each env.py passes its own metadata)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine, pool


def run_migrations(target_metadata: MetaData) -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    version_table = config.get_main_option("version_table") or "alembic_version"
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            version_table=version_table,
            compare_type=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable, target_metadata, version_table)
        return
    engine = create_engine(url or "", poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection, target_metadata, version_table)
    engine.dispose()


def _run(connection: object, target_metadata: MetaData, version_table: str) -> None:
    context.configure(
        # Both callers pass a Connection; typed object here to keep alembic out of the hint.
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        version_table=version_table,
        compare_type=True,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()
