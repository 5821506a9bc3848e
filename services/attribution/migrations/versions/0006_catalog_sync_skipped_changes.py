"""catalog changes the sync could not apply

Revision ID: 0006_catalog_sync_skipped
Revises: 0005_integrations
Create Date: 2026-12-06 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0006_catalog_sync_skipped"
down_revision: str | None = "0005_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_sync_skipped",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=300), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("skipped_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_catalog_sync_skipped")),
    )


def downgrade() -> None:
    op.drop_table("catalog_sync_skipped")
