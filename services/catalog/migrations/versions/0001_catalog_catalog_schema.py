"""catalog schema"""

import sqlalchemy as sa
from alembic import op

from shared import migration_kit as mk

revision, down_revision = "0001_catalog", None


def upgrade() -> None:
    audit = mk.audit_columns
    mk.tenant_table("accounts", mk.client_key(), *mk.account_columns(), *audit())
    mk.tenant_table("ad_spend", mk.ad_spend_key(), *mk.ad_spend_columns(), *audit())
    mk.tenant_table("ads", mk.client_key(), *mk.ad_columns(), *audit())
    mk.create_index("ads", "tenant_id", "campaign_id")
    mk.tenant_table(
        "campaigns",
        mk.client_key(),
        mk.string("name", 256),
        mk.string("objective", 64, nullable=True),
        mk.utc_datetime("starts_at", nullable=True),
        mk.utc_datetime("ends_at", nullable=True),
        mk.money("budget", nullable=True),
        mk.string("currency", 3, nullable=True),
        *audit(),
    )
    # The change feed: one cross-tenant log, keyed by its sequence number alone.
    op.create_table(
        "changes",
        mk.column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
        mk.string("tenant_id"),
        mk.string("entity", 32),
        mk.string("entity_id", 300),
        mk.string("op", 8),
        mk.json_doc("data"),
        mk.utc_datetime("created_at"),
        mk.primary_key("changes", "seq"),
    )
    mk.create_index("changes", "tenant_id", "seq")
    mk.tenant_table(
        "content_products", mk.content_product_key(), *mk.content_product_columns(), *audit()
    )
    mk.create_index("content_products", "tenant_id", "product_id")
    mk.tenant_table("contents", mk.client_key(), *mk.content_columns(), *audit())
    mk.create_index("contents", "tenant_id", "account_id")
    mk.tenant_table("products", mk.client_key(), *mk.product_columns(url=True), *audit())
    mk.revoked_tokens_table()
    mk.tenant_table(
        "tracking_links",
        [mk.string("id", 32)],
        *mk.link_target_columns(),
        mk.string("destination_url", 2048),
        mk.string("url", 2200),
        *audit(),
    )
    # The public /r/{code} redirect carries no tenant: the code is unique on its own.
    mk.create_index("tracking_links", "id", name="uq_tracking_links_code", unique=True)


def downgrade() -> None:
    mk.drop_tables(
        "tracking_links",
        "revoked_tokens",
        "products",
        "contents",
        "content_products",
        "changes",
        "campaigns",
        "ads",
        "ad_spend",
        "accounts",
    )
