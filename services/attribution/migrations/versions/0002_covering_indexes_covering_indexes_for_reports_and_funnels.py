"""covering indexes for reports and funnels"""

from shared import migration_kit as mk

revision, down_revision = "0002_covering_indexes", "0001_attribution"


def upgrade() -> None:
    mk.create_index("catalog_ad_spend", "tenant_id", "day")
    # Reports and funnels read these columns from the index alone.
    mk.drop_index("events", "tenant_id", "type", "occurred_at")
    mk.drop_index("events", "tenant_id", "user_id", "occurred_at")
    mk.create_index("events", "tenant_id", "type", "occurred_at", "user_id", "content_id", "ad_id")
    mk.create_index("events", "tenant_id", "user_id", "occurred_at", "type")


def downgrade() -> None:
    mk.drop_index("events", "tenant_id", "user_id", "occurred_at", "type")
    mk.drop_index("events", "tenant_id", "type", "occurred_at", "user_id", "content_id", "ad_id")
    mk.create_index("events", "tenant_id", "user_id", "occurred_at")
    mk.create_index("events", "tenant_id", "type", "occurred_at")
    mk.drop_index("catalog_ad_spend", "tenant_id", "day")
