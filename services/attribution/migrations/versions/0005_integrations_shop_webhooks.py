"""shop integrations and their webhook deliveries"""

import sqlalchemy as sa

from shared import migration_kit as mk

revision, down_revision = "0005_integrations", "0004_fraud_rules"


def upgrade() -> None:
    mk.tenant_table(
        "integrations",
        [mk.string("integration_id", 64)],
        mk.string("platform", 16),
        mk.string("shop", 256),
        mk.string("currency", 3, nullable=True),
        mk.text("secret_encrypted"),
        mk.text("previous_secret_encrypted", nullable=True),
        mk.utc_datetime("secret_rotated_at", nullable=True),
        *mk.timestamps(),
    )
    # The shop webhook URL carries only the integration id, no tenant.
    mk.create_index(
        "integrations", "integration_id", name="uq_integrations_integration_id", unique=True
    )
    mk.tenant_table(
        "integration_deliveries",
        [mk.string("integration_id", 64), mk.string("delivery_key", 256)],
        mk.string("topic", 64),
        mk.string("order_id", nullable=True),
        mk.string("outcome", 16),
        mk.text("reason", nullable=True),
        mk.json_doc("headers"),
        mk.column("body", sa.LargeBinary()),
        mk.utc_datetime("received_at"),
    )
    mk.create_index("integration_deliveries", "tenant_id", "integration_id", "received_at")


def downgrade() -> None:
    mk.drop_tables("integration_deliveries", "integrations")
