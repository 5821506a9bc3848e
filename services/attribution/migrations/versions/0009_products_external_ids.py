"""catalog products: the shops' ids (read model)

Revision ID: 0009_products_external_ids
Revises: 0008_experiments
Create Date: 2026-12-06 13:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0009_products_external_ids"
down_revision: str | None = "0008_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_ids", shared.db.JSONDoc(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_products", schema=None) as batch_op:
        batch_op.drop_column("external_ids")
