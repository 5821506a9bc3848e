"""orders: buffered status posts held until the post they follow is written"""

from shared import migration_kit as mk

revision, down_revision = "0013_held_order_posts", "0012_analytics_order_changes"


def upgrade() -> None:
    mk.tenant_table(
        "held_order_posts",
        [mk.string("order_id"), mk.string("status", 16)],
        mk.text("body"),
        mk.utc_datetime("accepted_at"),
        mk.utc_datetime("held_at"),
    )
    mk.create_index("held_order_posts", "held_at")


def downgrade() -> None:
    mk.drop_tables("held_order_posts")
