"""interactions: the reply_to and account_id of reply, dm and dm_reply events

Created 2026-12-06 13:45:00.000000
"""

from shared import migration_kit as mk

revision, down_revision = "0010_interactions", "0009_products_external_ids"


def upgrade() -> None:
    mk.tenant_table(
        "interactions",
        [mk.string("event_id")],
        mk.string("type", 16),
        mk.utc_datetime("occurred_at"),
        mk.string("account_id", nullable=True),
        mk.string("reply_to", nullable=True),
    )
    mk.create_index("interactions", "tenant_id", "reply_to")
    mk.create_index("interactions", "tenant_id", "type", "occurred_at")


def downgrade() -> None:
    mk.drop_tables("interactions")
