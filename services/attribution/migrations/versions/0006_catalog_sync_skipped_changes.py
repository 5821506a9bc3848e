"""catalog changes the sync could not apply"""

from shared import migration_kit as mk

revision, down_revision = "0006_catalog_sync_skipped", "0005_integrations"


def upgrade() -> None:
    mk.tenant_table(
        "catalog_sync_skipped",
        [mk.big_integer("seq")],
        mk.string("entity", 64),
        mk.string("entity_id", 300),
        mk.string("op", 16),
        mk.text("reason"),
        mk.text("change"),
        mk.utc_datetime("skipped_at"),
    )


def downgrade() -> None:
    mk.drop_tables("catalog_sync_skipped")
