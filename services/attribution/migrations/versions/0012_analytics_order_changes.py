"""orders: an outbox of changed orders, filled by triggers, for the analytic store"""

import sqlalchemy as sa
from alembic import op

from shared import migration_kit as mk

revision, down_revision = "0012_analytics_order_changes", "0011_campaign_activity"

# Every insert or update of an order leaves a row; replication copies the order's current
# state to the analytic store, then deletes the rows it read. The database fills it, so no
# write path can forget to. Credits and lines change only with an update of their order
# (its attributed_at, status, revenue or lines' totals), so the trigger on orders sees them.
_SQLITE_TRIGGER = """
CREATE TRIGGER analytics_order_changes_on_{op} AFTER {OP} ON orders FOR EACH ROW
BEGIN
    INSERT INTO analytics_order_changes (tenant_id, order_id)
    VALUES (NEW.tenant_id, NEW.order_id);
END
"""

_PG_FUNCTION = """
CREATE FUNCTION analytics_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_order_changes (tenant_id, order_id)
    VALUES (NEW.tenant_id, NEW.order_id);
    RETURN NULL;
END
$$
"""

_PG_TRIGGER = """
CREATE TRIGGER analytics_order_changes AFTER INSERT OR UPDATE ON orders
FOR EACH ROW EXECUTE FUNCTION analytics_order_changed()
"""


def upgrade() -> None:
    # Read in the order of change_id by one replicator for every tenant: keyed by it alone.
    op.create_table(
        "analytics_order_changes",
        mk.column(
            "change_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True
        ),
        mk.string("tenant_id"),
        mk.string("order_id"),
        mk.primary_key("analytics_order_changes", "change_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        for name in ("insert", "update"):
            op.execute(_SQLITE_TRIGGER.format(op=name, OP=name.upper()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER analytics_order_changes ON orders")
        op.execute("DROP FUNCTION analytics_order_changed()")
    else:
        for name in ("insert", "update"):
            op.execute(f"DROP TRIGGER analytics_order_changes_on_{name}")
    mk.drop_tables("analytics_order_changes")
