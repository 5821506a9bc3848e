"""catalog read model: a campaign's objective, engagement activity and dates"""

from shared import migration_kit as mk

revision, down_revision = "0011_campaign_activity", "0010_interactions"


def upgrade() -> None:
    mk.add_columns(
        "catalog_campaigns",
        mk.string("objective", 64, nullable=True),
        mk.string("activity", 16, nullable=True),
        mk.utc_datetime("starts_at", nullable=True),
        mk.utc_datetime("ends_at", nullable=True),
    )


def downgrade() -> None:
    mk.drop_columns("catalog_campaigns", "ends_at", "starts_at", "activity", "objective")
