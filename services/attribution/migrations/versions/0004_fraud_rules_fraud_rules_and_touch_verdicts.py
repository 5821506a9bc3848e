"""fraud rules and touch verdicts"""

from shared import migration_kit as mk

revision, down_revision = "0004_fraud_rules", "0003_event_daily"


def upgrade() -> None:
    mk.tenant_table(
        "touch_verdicts",
        [mk.string("order_id"), mk.string("event_id"), mk.string("reason", 32)],
        mk.string("mode", 8),
        mk.string("touch", 8),
        mk.utc_datetime("touch_at"),
        mk.string("content_id", nullable=True),
        mk.string("ad_id", nullable=True),
        mk.utc_datetime("paid_at"),
    )
    mk.create_index("touch_verdicts", "tenant_id", "touch_at")
    mk.add_columns("credits", mk.string("flags", 128, nullable=True))
    mk.add_columns("tenant_settings", mk.json_doc("fraud_rules", nullable=True))


def downgrade() -> None:
    mk.drop_columns("tenant_settings", "fraud_rules")
    mk.drop_columns("credits", "flags")
    mk.drop_tables("touch_verdicts")
