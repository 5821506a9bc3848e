"""experiments on content variants"""

from shared import migration_kit as mk

revision, down_revision = "0008_experiments", "0007_events_analytics_seq"


def upgrade() -> None:
    mk.tenant_table(
        "experiments",
        [mk.string("experiment_id")],
        mk.string("name", 256),
        mk.text("hypothesis", nullable=True),
        mk.json_doc("variants"),
        mk.string("metric", 32),
        mk.utc_datetime("starts_at"),
        mk.utc_datetime("ends_at", nullable=True),
        *mk.timestamps(),
    )


def downgrade() -> None:
    mk.drop_tables("experiments")
