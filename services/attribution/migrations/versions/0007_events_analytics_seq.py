"""events: the replication batch that copied each event to the analytic store

Revision ID: 0007_events_analytics_seq
Revises: 0006_catalog_sync_skipped
Create Date: 2026-12-06 10:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_events_analytics_seq"
down_revision: str | None = "0006_catalog_sync_skipped"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("analytics_seq", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_events_analytics_seq"), "events", ["analytics_seq"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_analytics_seq"), table_name="events")
    op.drop_column("events", "analytics_seq")
