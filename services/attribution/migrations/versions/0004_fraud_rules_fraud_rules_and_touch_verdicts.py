"""fraud rules and touch verdicts

Revision ID: 0004_fraud_rules
Revises: 0003_event_daily
Create Date: 2026-12-06 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0004_fraud_rules"
down_revision: str | None = "0003_event_daily"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "touch_verdicts",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("touch", sa.String(length=8), nullable=False),
        sa.Column("touch_at", shared.db.UTCDateTime(), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=True),
        sa.Column("ad_id", sa.String(length=128), nullable=True),
        sa.Column("paid_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "order_id", "event_id", "reason", name=op.f("pk_touch_verdicts")
        ),
    )
    with op.batch_alter_table("touch_verdicts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_touch_verdicts_tenant_id_touch_at"),
            ["tenant_id", "touch_at"],
            unique=False,
        )
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flags", sa.String(length=128), nullable=True))
    with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fraud_rules", shared.db.JSONDoc(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenant_settings", schema=None) as batch_op:
        batch_op.drop_column("fraud_rules")
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.drop_column("flags")
    with op.batch_alter_table("touch_verdicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_touch_verdicts_tenant_id_touch_at"))
    op.drop_table("touch_verdicts")
