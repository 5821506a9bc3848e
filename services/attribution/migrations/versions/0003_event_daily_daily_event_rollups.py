"""daily event rollups

Revision ID: 0003_event_daily
Revises: 0002_covering_indexes
Create Date: 2026-11-27 23:38:07.183544
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0003_event_daily"
down_revision: str | None = "0002_covering_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
    op.create_table(
        "event_daily",
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("day", shared.db.UTCDateTime(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("ad_id", sa.String(length=128), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("watch_seconds", sa.Double(), nullable=False),
        sa.Column("watch_events", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "type", "content_id", "ad_id", name=op.f("pk_event_daily")
        ),
    )
    op.execute(_BACKFILL[op.get_bind().dialect.name])


def downgrade() -> None:
    op.drop_table("event_daily")
