"""What the database itself can do, measured on the same rows as the service.

* Bulk insert: the plain deduplicating insert of the benchmark's event stream into an
  ``events`` table built by the attribution migrations (same columns, same indexes), with the
  fastest driver method: SQLite ``INSERT OR IGNORE`` executemany in 10,000-row transactions
  (WAL, synchronous=NORMAL, the service's page cache and checkpoint interval); PostgreSQL
  (asyncpg) ``INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`` and ``COPY`` into a temporary
  staging table then ``INSERT … SELECT … ON CONFLICT DO NOTHING``, per 10,000 rows, one
  transaction each.
* Greedy funnel: per user, the first impression in range, the first view after it within the
  window, the first click after that, the first paid order after that (correlated ``MIN``
  subqueries over the service's own tables and indexes).

Rows are converted to driver values before the clock starts: only the database is timed.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.infra import process_cpu_seconds
from services.attribution.models import Event as StoredEvent
from services.demo.timeline import from_us, to_us
from services.demo.viewers import Event
from shared.db import SQLITE_CACHE_KIB, SQLITE_WAL_CHECKPOINT_PAGES

BATCH_ROWS = 10_000
#: The columns the service writes on ingest, in its table's order (``analytics_seq`` is the
#: analytic replication's stamp, set later, so neither the service nor the baseline writes it).
COLUMNS = tuple(
    column.name for column in StoredEvent.__table__.columns if column.name != "analytics_seq"
)


@dataclass(frozen=True, slots=True)
class InsertResult:
    method: str
    rows: int
    inserted: int
    seconds: float
    cpu_seconds: float | None = None  # client + database server CPU while inserting

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _values(event: Event) -> tuple[Any, ...]:
    """The event's values for the columns between ``tenant_id`` and ``received_at``."""
    watch = event.watch_seconds
    properties = None if watch is None else orjson.dumps({"watch_seconds": watch}).decode()
    return (*event[:10], properties)


# --------------------------------------------------------------------------- SQLite


def sqlite_rows(tenant: str, events: Sequence[Event], received_us: int) -> list[tuple[Any, ...]]:
    """SQLite stores ``UTCDateTime`` as integer epoch microseconds."""
    return [(tenant, *_values(row), received_us) for row in events]


def sqlite_bulk_insert(path: Path, rows: Sequence[tuple[Any, ...]]) -> InsertResult:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        # The same settings as the service's connections.
        conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        before = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        started = time.perf_counter()
        cpu = time.thread_time()
        for i in range(0, len(rows), BATCH_ROWS):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows[i : i + BATCH_ROWS])
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        cpu = time.thread_time() - cpu
        after = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    method = "sqlite INSERT OR IGNORE executemany"
    return InsertResult(method, len(rows), after - before, seconds, cpu)


# --------------------------------------------------------------------------- PostgreSQL


def pg_rows(tenant: str, events: Sequence[Event], received: dt.datetime) -> list[tuple[Any, ...]]:
    """asyncpg values: ``timestamptz`` as aware datetimes, ``jsonb`` as JSON text."""
    out = []
    for event in events:
        values = list(_values(event))
        values[2] = from_us(event.t_us)
        out.append((tenant, *values, received))
    return out


_UNNEST_SQL = """
INSERT INTO events (tenant_id, event_id, type, occurred_at, user_id, content_id, product_id,
                    ad_id, click_id, session_id, platform, properties, received_at)
SELECT $1, e, ty, oa, u, c, p, a, ck, s, pl, pr, $13
FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
     AS t(e, ty, oa, u, c, p, a, ck, s, pl, pr)
ON CONFLICT (tenant_id, event_id) DO NOTHING
"""


async def pg_bulk_insert(dsn: str, rows: Sequence[tuple[Any, ...]], method: str) -> InsertResult:
    """``method``: ``unnest`` or ``copy``; into an empty ``events`` table."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE events")
        await conn.execute("CHECKPOINT")
        if method == "copy":
            await conn.execute(
                "CREATE TEMP TABLE bench_staging (LIKE events INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
        batches = []
        for i in range(0, len(rows), BATCH_ROWS):
            chunk = rows[i : i + BATCH_ROWS]
            if method == "unnest":
                columns = list(zip(*chunk, strict=True))
                batches.append([chunk[0][0], *map(list, columns[1:12]), chunk[0][12]])
            else:
                batches.append(list(chunk))
        backend_pid = await conn.fetchval("SELECT pg_backend_pid()")
        server_cpu = process_cpu_seconds(backend_pid)
        client_cpu = time.process_time()
        started = time.perf_counter()
        for batch in batches:
            if method == "unnest":
                await conn.execute(_UNNEST_SQL, *batch)
            else:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "bench_staging", records=batch, columns=COLUMNS
                    )
                    await conn.execute(
                        f"INSERT INTO events ({', '.join(COLUMNS)}) "
                        f"SELECT {', '.join(COLUMNS)} FROM bench_staging "
                        "ON CONFLICT (tenant_id, event_id) DO NOTHING"
                    )
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_cpu
        server_end = process_cpu_seconds(backend_pid)
        cpu = (
            client_cpu + server_end - server_cpu
            if server_cpu is not None and server_end is not None
            else None
        )
        inserted = await conn.fetchval("SELECT COUNT(*) FROM events")
    finally:
        await conn.close()
    label = (
        "postgres INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING"
        if method == "unnest"
        else "postgres COPY → temp staging → INSERT … ON CONFLICT DO NOTHING"
    )
    return InsertResult(label, len(rows), int(inserted), seconds, cpu)


# --------------------------------------------------------------------------- greedy funnel

# Correlated MIN subqueries, one per step, each materialised once; `{p}` is the placeholder
# style and `{w}` the window expression of the dialect.
_GREEDY_TEMPLATE = """
WITH s1 AS MATERIALIZED (
    SELECT user_id, MIN(occurred_at) AS t1 FROM events
    WHERE tenant_id = {tenant} AND type = 'impression'
      AND occurred_at >= {start} AND occurred_at < {end}
    GROUP BY user_id
), s2 AS MATERIALIZED (
    SELECT s1.user_id, s1.t1, (
        SELECT MIN(e.occurred_at) FROM events e
        WHERE e.tenant_id = {tenant} AND e.user_id = s1.user_id AND e.type = 'view'
          AND e.occurred_at >= s1.t1 AND e.occurred_at <= s1.t1 + {window}
    ) AS t2 FROM s1
), s3 AS MATERIALIZED (
    SELECT s2.user_id, s2.t1, (
        SELECT MIN(e.occurred_at) FROM events e
        WHERE e.tenant_id = {tenant} AND e.user_id = s2.user_id AND e.type = 'click'
          AND e.occurred_at >= s2.t2 AND e.occurred_at <= s2.t1 + {window}
    ) AS t3 FROM s2 WHERE s2.t2 IS NOT NULL
), s4 AS MATERIALIZED (
    SELECT s3.user_id, (
        SELECT MIN(o.paid_at) FROM orders o
        WHERE o.tenant_id = {tenant} AND o.buyer_id = s3.user_id
          AND o.paid_at >= s3.t3 AND o.paid_at <= s3.t1 + {window}
    ) AS t4 FROM s3 WHERE s3.t3 IS NOT NULL
)
SELECT (SELECT COUNT(*) FROM s1), (SELECT COUNT(*) FROM s2 WHERE t2 IS NOT NULL),
       (SELECT COUNT(*) FROM s3 WHERE t3 IS NOT NULL),
       (SELECT COUNT(*) FROM s4 WHERE t4 IS NOT NULL)
"""
GREEDY_SQLITE = _GREEDY_TEMPLATE.format(
    tenant=":tenant", start=":start", end=":end", window=":window"
)
GREEDY_POSTGRES = _GREEDY_TEMPLATE.format(tenant="$1", start="$2", end="$3", window="$4::interval")


@dataclass(frozen=True, slots=True)
class GreedyResult:
    users: list[int]
    seconds: list[float]


def sqlite_greedy_funnel(
    path: Path, tenant: str, start: dt.datetime, end: dt.datetime, window_s: int, reps: int
) -> GreedyResult:
    params = {
        "tenant": tenant,
        "start": to_us(start),
        "end": to_us(end),
        "window": window_s * 1_000_000,
    }
    conn = sqlite3.connect(path)
    try:
        seconds: list[float] = []
        users: list[int] = []
        for _ in range(reps):
            started = time.perf_counter()
            users = list(conn.execute(GREEDY_SQLITE, params).fetchone())
            seconds.append(time.perf_counter() - started)
    finally:
        conn.close()
    return GreedyResult(users, seconds)


async def pg_greedy_funnel(
    dsn: str, tenant: str, start: dt.datetime, end: dt.datetime, window_s: int, reps: int
) -> GreedyResult:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        seconds: list[float] = []
        users: list[int] = []
        window = dt.timedelta(seconds=window_s)
        for _ in range(reps):
            started = time.perf_counter()
            record = await conn.fetchrow(GREEDY_POSTGRES, tenant, start, end, window)
            seconds.append(time.perf_counter() - started)
            users = [int(v) for v in record.values()]
    finally:
        await conn.close()
    return GreedyResult(users, seconds)


async def pg_analyze(dsn: str) -> None:
    """What autovacuum does after a bulk load, done now so results don't depend on its timing.

    Since PostgreSQL 13 inserts alone trigger autovacuum (``autovacuum_vacuum_insert_*``),
    which sets the visibility map (index-only scans then skip the heap) and gathers
    statistics.
    """
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
