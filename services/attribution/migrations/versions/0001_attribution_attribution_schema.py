"""attribution schema"""

import sqlalchemy as sa
from alembic import op

from shared import migration_kit as mk

revision, down_revision = "0001_attribution", None

# The local read model of the catalog, fed by its change feed.
_CATALOG_TABLES = (
    "catalog_accounts",
    "catalog_ad_spend",
    "catalog_ads",
    "catalog_campaigns",
    "catalog_content_products",
    "catalog_contents",
    "catalog_products",
    "catalog_tracking_links",
)


def upgrade() -> None:
    _catalog_read_model()
    mk.tenant_table(
        "credits",
        [
            mk.string("order_id"),
            mk.string("model", 32),
            mk.integer("position", autoincrement=False),
        ],
        mk.string("product_id"),
        mk.string("content_id", nullable=True),
        mk.string("ad_id", nullable=True),
        mk.string("event_id"),
        mk.string("touch", 8),
        mk.utc_datetime("touch_at"),
        mk.column("weight", sa.Float()),
        mk.money("amount"),
        mk.column("order_share", sa.Float()),
        mk.utc_datetime("paid_at"),
        mk.string("currency", 3),
    )
    mk.create_index("credits", "tenant_id", "model", "paid_at")
    _events()
    _orders()
    mk.tenant_table(
        "rejected_events",
        [mk.string("id", 40)],
        mk.integer("batch_index"),
        mk.string("event_id", 256, nullable=True),
        mk.json_doc("errors"),
        mk.json_doc("payload"),
        mk.utc_datetime("received_at"),
    )
    mk.revoked_tokens_table()
    # One row per service: where it is in the catalog change feed.
    op.create_table(
        "sync_state",
        mk.string("name", 32),
        mk.big_integer("catalog_seq"),
        mk.utc_datetime("last_success_at", nullable=True),
        mk.utc_datetime("last_change_at", nullable=True),
        mk.primary_key("sync_state", "name"),
    )
    mk.tenant_table(
        "tenant_settings",
        [],
        mk.string("currency", 3, nullable=True),
        mk.string("timezone", 64),
        mk.integer("click_window_seconds"),
        mk.integer("view_window_seconds"),
        mk.string("match", 16),
        mk.string("default_model", 32),
        mk.text("webhook_secret_encrypted", nullable=True),
        *mk.timestamps(),
    )


def _catalog_read_model() -> None:
    mk.tenant_table("catalog_accounts", mk.client_key(), *mk.account_columns())
    mk.tenant_table("catalog_ad_spend", mk.ad_spend_key(), *mk.ad_spend_columns())
    mk.tenant_table("catalog_ads", mk.client_key(), *mk.ad_columns())
    mk.tenant_table("catalog_campaigns", mk.client_key(), mk.string("name", 256))
    mk.tenant_table(
        "catalog_content_products", mk.content_product_key(), *mk.content_product_columns()
    )
    mk.create_index("catalog_content_products", "tenant_id", "product_id")
    mk.tenant_table("catalog_contents", mk.client_key(), *mk.content_columns())
    mk.tenant_table("catalog_products", mk.client_key(), *mk.product_columns(url=False))
    mk.tenant_table(
        "catalog_tracking_links",
        [mk.string("code", 32)],
        *mk.link_target_columns(),
        mk.text("destination_url"),
    )
    # The public /r/{code} redirect carries no tenant: the code is unique on its own.
    mk.create_index(
        "catalog_tracking_links", "code", name="uq_catalog_tracking_links_code", unique=True
    )


def _events() -> None:
    mk.tenant_table(
        "events",
        [mk.string("event_id")],
        *mk.event_type_and_time(),
        mk.string("user_id"),
        mk.string("content_id", nullable=True),
        mk.string("product_id", nullable=True),
        mk.string("ad_id", nullable=True),
        mk.string("click_id", nullable=True),
        mk.string("session_id", nullable=True),
        mk.string("platform", 32, nullable=True),
        mk.json_doc("properties", nullable=True),
        mk.utc_datetime("received_at"),
    )
    mk.create_index("events", "tenant_id", "click_id")
    mk.create_index("events", "tenant_id", "content_id", "occurred_at")
    mk.create_index("events", "tenant_id", "type", "occurred_at")
    mk.create_index("events", "tenant_id", "user_id", "occurred_at")


def _orders() -> None:
    mk.tenant_table("order_clicks", [mk.string("click_id"), mk.string("order_id")])
    mk.tenant_table(
        "order_lines",
        [mk.string("order_id"), mk.integer("line_no", autoincrement=False)],
        mk.string("product_id"),
        mk.integer("quantity"),
        mk.money("unit_price"),
        mk.money("revenue"),
        mk.integer("refunded_quantity"),
    )
    mk.tenant_table(
        "order_status_posts",
        [mk.string("order_id"), mk.string("status", 16)],
        mk.string("body_hash", 64),
        mk.utc_datetime("occurred_at"),
        mk.utc_datetime("received_at"),
        mk.json_doc("response"),
    )
    mk.tenant_table(
        "orders",
        [mk.string("order_id")],
        mk.string("status", 16),
        mk.string("user_id", nullable=True),
        mk.string("buyer_id", nullable=True),
        mk.json_doc("click_ids"),
        mk.string("currency", 3),
        mk.utc_datetime("ordered_at", nullable=True),
        mk.utc_datetime("paid_at", nullable=True),
        mk.utc_datetime("cancelled_at", nullable=True),
        mk.money("gross_revenue"),
        mk.money("revenue"),
        mk.money("refunded"),
        mk.utc_datetime("attributed_at", nullable=True),
        *mk.timestamps(),
    )
    mk.create_index("orders", "tenant_id", "buyer_id", "paid_at")
    mk.create_index("orders", "tenant_id", "paid_at")
    mk.tenant_table(
        "refunds",
        [mk.string("refund_id")],
        mk.string("order_id"),
        mk.utc_datetime("occurred_at"),
        mk.money("amount"),
        mk.json_doc("items", nullable=True),
        mk.string("body_hash", 64),
        mk.json_doc("response"),
        mk.utc_datetime("received_at"),
    )
    mk.create_index("refunds", "tenant_id", "order_id")


def downgrade() -> None:
    mk.drop_tables(
        "tenant_settings",
        "sync_state",
        "revoked_tokens",
        "rejected_events",
        "refunds",
        "orders",
        "order_status_posts",
        "order_lines",
        "order_clicks",
        "events",
        "credits",
        *reversed(_CATALOG_TABLES),
    )
