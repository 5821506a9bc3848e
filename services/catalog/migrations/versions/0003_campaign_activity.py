"""campaigns: the engagement activity a campaign runs"""

from shared import migration_kit as mk

revision, down_revision = "0003_campaign_activity", "0002_products_external_ids"


def upgrade() -> None:
    mk.add_columns("campaigns", mk.string("activity", 16, nullable=True))


def downgrade() -> None:
    mk.drop_columns("campaigns", "activity")
