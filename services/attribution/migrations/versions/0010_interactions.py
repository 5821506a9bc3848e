"""interactions: the reply_to and account_id of reply, dm and dm_reply events

Revision ID: 0010_interactions
Revises: 0009_products_external_ids
Create Date: 2026-12-06 13:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0010_interactions"
down_revision: str | None = "0009_products_external_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", shared.db.UTCDateTime(), nullable=False),
        sa.Column("account_id", sa.String(length=128), nullable=True),
        sa.Column("reply_to", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_interactions")),
    )
    op.create_index(
        op.f("ix_interactions_tenant_id_reply_to"), "interactions", ["tenant_id", "reply_to"]
    )
    op.create_index(
        op.f("ix_interactions_tenant_id_type_occurred_at"),
        "interactions",
        ["tenant_id", "type", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_interactions_tenant_id_type_occurred_at"), table_name="interactions")
    op.drop_index(op.f("ix_interactions_tenant_id_reply_to"), table_name="interactions")
    op.drop_table("interactions")
