"""daily event rollups"""

import sqlalchemy as sa
from alembic import op

from shared import migration_kit as mk

revision, down_revision = "0003_event_daily", "0002_covering_indexes"

# Events stored before this revision are rolled up once here; ingest keeps it current after.
_DAY_US = 86_400 * 1_000_000
_BACKFILL = {
    # UTCDateTime is epoch microseconds on SQLite; floor to the day (also before 1970).
    "sqlite": f"""
        INSERT INTO event_daily
        SELECT tenant_id, occurred_at - ((occurred_at % {_DAY_US}) + {_DAY_US}) % {_DAY_US},
               type, COALESCE(content_id, ''), COALESCE(ad_id, ''), COUNT(*),
               COALESCE(SUM(w), 0), COUNT(w)
        FROM (SELECT *, CASE WHEN type IN ('view', 'view_complete')
                              AND json_type(properties, '$.watch_seconds') IN ('integer', 'real')
                             THEN json_extract(properties, '$.watch_seconds') END AS w
              FROM events)
        GROUP BY 1, 2, 3, 4, 5
    """,
    "postgresql": """
        INSERT INTO event_daily
        SELECT tenant_id, date_trunc('day', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
               type, COALESCE(content_id, ''), COALESCE(ad_id, ''), COUNT(*),
               COALESCE(SUM(w), 0), COUNT(w)
        FROM (SELECT *, CASE WHEN type IN ('view', 'view_complete')
                              AND jsonb_typeof(properties -> 'watch_seconds') = 'number'
                             THEN (properties ->> 'watch_seconds')::float8 END AS w
              FROM events) AS e
        GROUP BY 1, 2, 3, 4, 5
    """,
}


def upgrade() -> None:
    mk.tenant_table(
        "event_daily",
        [
            mk.utc_datetime("day"),
            mk.string("type", 16),
            mk.string("content_id"),
            mk.string("ad_id"),
        ],
        mk.big_integer("events"),
        mk.column("watch_seconds", sa.Double()),
        mk.big_integer("watch_events"),
    )
    op.execute(_BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_table("event_daily")
