"""products: the shops' ids of a product"""

from shared import migration_kit as mk

revision, down_revision = "0002_products_external_ids", "0001_catalog"


def upgrade() -> None:
    mk.add_columns("products", mk.json_doc("external_ids", nullable=True))


def downgrade() -> None:
    mk.drop_columns("products", "external_ids")
