"""Programmatic Alembic: each service has its own script folder and version table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from shared.db import sync_url


@dataclass(frozen=True)
class MigrationSpec:
    service: str
    script_location: Path
    version_table: str


def alembic_config(spec: MigrationSpec, database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(spec.script_location))
    # Migrations run on a synchronous driver (sqlite3 / psycopg) so they can be started from
    # inside or outside an event loop alike.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    config.set_main_option("version_table", spec.version_table)
    config.attributes["version_table"] = spec.version_table
    return config


def upgrade(spec: MigrationSpec, database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(spec, database_url), revision)


def downgrade(spec: MigrationSpec, database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(spec, database_url), revision)


def head_revision(spec: MigrationSpec) -> str | None:
    script = ScriptDirectory.from_config(alembic_config(spec, "sqlite://"))
    return script.get_current_head()
