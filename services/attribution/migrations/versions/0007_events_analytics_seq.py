"""events: the replication batch that copied each event to the analytic store"""

from alembic import op

from shared import migration_kit as mk

revision, down_revision = "0007_events_analytics_seq", "0006_catalog_sync_skipped"


def upgrade() -> None:
    op.add_column("events", mk.big_integer("analytics_seq", nullable=True))
    # Replication reads every tenant's uncopied events: the one index not led by tenant_id.
    mk.create_index("events", "analytics_seq")


def downgrade() -> None:
    mk.drop_index("events", "analytics_seq")
    # Not in a batch: SQLite drops the column in place (a batch would rebuild the table).
    op.drop_column("events", "analytics_seq")
