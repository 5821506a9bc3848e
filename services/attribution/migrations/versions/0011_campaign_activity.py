"""catalog read model: a campaign's objective, engagement activity and dates

Revision ID: 0011_campaign_activity
Revises: 0010_interactions
Create Date: 2026-12-06 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0011_campaign_activity"
down_revision: str | None = "0010_interactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("objective", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("activity", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("starts_at", shared.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("ends_at", shared.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_campaigns", schema=None) as batch_op:
        batch_op.drop_column("ends_at")
        batch_op.drop_column("starts_at")
        batch_op.drop_column("activity")
        batch_op.drop_column("objective")
