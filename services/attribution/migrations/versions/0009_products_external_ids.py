"""catalog products: the shops' ids (read model)"""

from shared import migration_kit as mk

revision, down_revision = "0009_products_external_ids", "0008_experiments"


def upgrade() -> None:
    mk.add_columns("catalog_products", mk.json_doc("external_ids", nullable=True))


def downgrade() -> None:
    mk.drop_columns("catalog_products", "external_ids")
