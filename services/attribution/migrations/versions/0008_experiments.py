"""experiments on content variants

Revision ID: 0008_experiments
Revises: 0007_events_analytics_seq
Create Date: 2026-12-06 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0008_experiments"
down_revision: str | None = "0007_events_analytics_seq"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("experiment_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=True),
        sa.Column("variants", shared.db.JSONDoc(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("starts_at", shared.db.UTCDateTime(), nullable=False),
        sa.Column("ends_at", shared.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "experiment_id", name=op.f("pk_experiments")),
    )


def downgrade() -> None:
    op.drop_table("experiments")
