"""interactions: the reply_to and account_id of reply, dm and dm_reply events"""

from shared import migration_kit as mk

revision, down_revision = "0010_interactions", "0009_products_external_ids"


def upgrade() -> None:
    mk.tenant_table(
        "interactions",
        [mk.string("event_id")],
        *mk.event_type_and_time(),
        mk.string("account_id", nullable=True),
        mk.string("reply_to", nullable=True),
    )
    mk.create_index("interactions", "tenant_id", "reply_to")
    mk.create_index("interactions", "tenant_id", "type", "occurred_at")


def downgrade() -> None:
    mk.drop_tables("interactions")
