"""shop integrations and their webhook deliveries

Revision ID: 0005_integrations
Revises: 0004_fraud_rules
Create Date: 2026-12-06 04:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0005_integrations"
down_revision: str | None = "0004_fraud_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("integration_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("shop", sa.String(length=256), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("secret_rotated_at", shared.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", shared.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "integration_id", name=op.f("pk_integrations")),
    )
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.create_index("uq_integrations_integration_id", ["integration_id"], unique=True)
    op.create_table(
        "integration_deliveries",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("integration_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_key", sa.String(length=256), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("headers", shared.db.JSONDoc(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", shared.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "integration_id", "delivery_key", name=op.f("pk_integration_deliveries")
        ),
    )
    with op.batch_alter_table("integration_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_integration_deliveries_tenant_id_integration_id_received_at"),
            ["tenant_id", "integration_id", "received_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("integration_deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_integration_deliveries_tenant_id_integration_id_received_at")
        )
    op.drop_table("integration_deliveries")
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_index("uq_integrations_integration_id")
    op.drop_table("integrations")
