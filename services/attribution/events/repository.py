"""The SQL of the events domain: stored clicks, the event insert, ``event_daily``, the
rejected-events store.

Everything runs in the caller's transaction and leaves the commit to it. The event insert and
the daily upsert are the ingest hot path, so they talk to the driver in its own terms (one
constant statement per dialect, values as the driver takes them) and skip the per-value type
processing of SQLAlchemy's Core.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.events.rollup import DailyKey, DailySums
from services.attribution.events.validation import (
    ClickContext,
    EventRow,
    InteractionLink,
    Rejection,
)
from services.attribution.models import Event, Interaction, RejectedEvent
from shared.db import from_epoch_us, to_epoch_us

#: The columns a validated row carries, in ``EventRow`` order; the tenant and the arrival
#: time are added at insert.
ROW_COLUMNS: tuple[str, ...] = EventRow._fields
#: Column order of the event inserts (the benchmark's plain bulk insert uses it too).
EVENT_COLUMNS: tuple[str, ...] = ("tenant_id", *ROW_COLUMNS, "received_at")

_REJECTED_TABLE = cast(Table, RejectedEvent.__table__)
_OCCURRED = ROW_COLUMNS.index("occurred_at")
_event_id = attrgetter("event_id")
_COLUMN_LIST = ", ".join(EVENT_COLUMNS)
_CONFLICT = "ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id"
# SQLite refuses statements with more bound parameters than this (3.32+ default: 32,766).
_SQLITE_MAX_PARAMS = 32_766
_SQLITE_INSERT = (
    f"INSERT INTO events ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
)


# --- stored clicks ------------------------------------------------------------------------------


async def load_clicks(
    session: AsyncSession, tenant_id: str, click_ids: Iterable[str]
) -> dict[str, ClickContext]:
    """The tenant's stored clicks by ``click_id`` (the earliest when several share one)."""
    wanted = sorted(set(click_ids))
    if not wanted:
        return {}
    result = await session.execute(
        select(Event.click_id, Event.content_id, Event.product_id, Event.ad_id)
        .where(Event.tenant_id == tenant_id, Event.type == "click", Event.click_id.in_(wanted))
        .order_by(Event.occurred_at, Event.event_id)
    )
    found: dict[str, ClickContext] = {}
    for click_id, content_id, product_id, ad_id in result:
        found.setdefault(click_id, ClickContext(content_id, product_id, ad_id))
    return found


# --- events ---------------------------------------------------------------------------------------


def _placeholder(paramstyle: str, position: int) -> str:
    return f"${position}" if paramstyle == "numeric_dollar" else "%s"


@lru_cache(maxsize=4)
def _postgres_insert_sql(paramstyle: str) -> str:
    """One constant statement for any batch size: one array per column through ``unnest``.

    The tenant and the arrival time are scalars; ``properties`` travels as text and is cast
    to JSONB by the server (the same for every driver).
    """
    types = {"occurred_at": "timestamptz[]"}
    arrays = ", ".join(
        f"{_placeholder(paramstyle, i + 2)}::{types.get(name, 'text[]')}"
        for i, name in enumerate(ROW_COLUMNS)
    )
    selected = ", ".join(
        "u.properties::jsonb" if name == "properties" else f"u.{name}" for name in ROW_COLUMNS
    )
    tenant = _placeholder(paramstyle, 1)
    received = _placeholder(paramstyle, len(ROW_COLUMNS) + 2)
    return (
        f"INSERT INTO events ({_COLUMN_LIST}) "
        f"SELECT {tenant}::text, {selected}, {received}::timestamptz "
        f"FROM unnest({arrays}) AS u({', '.join(ROW_COLUMNS)}) {_CONFLICT}"
    )


@lru_cache(maxsize=64)
def _sqlite_stored_ids_sql(ids: int) -> str:
    """The event_ids among ``ids`` given ones that are stored already (cached by count)."""
    marks = ", ".join("?" * ids)
    return f"SELECT event_id FROM events WHERE tenant_id = ? AND event_id IN ({marks})"


async def insert_events(
    session: AsyncSession, tenant_id: str, rows: Sequence[EventRow], *, received_at: dt.datetime
) -> set[str]:
    """Insert valid rows (unique event_ids) with ``ON CONFLICT DO NOTHING`` semantics;
    returns the event_ids that were new.

    The key decides, so concurrent overlapping batches store each event once. Rows go in
    event_id order so two such transactions on PostgreSQL take their row locks in the same
    order and cannot deadlock. Timestamps go as datetimes (PostgreSQL) or epoch microseconds
    (SQLite, as ``UTCDateTime`` stores them), ``properties`` as the JSON text validation
    already serialised. PostgreSQL: one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` per
    batch; SQLite: a look-up of the ids, then one executemany.
    """
    if not rows:
        return set()
    ordered = sorted(rows, key=_event_id)
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        arrays: list[Any] = [tenant_id]
        arrays += (list(column) for column in zip(*ordered, strict=True))
        arrays.append(received_at)
        result = await connection.exec_driver_sql(
            _postgres_insert_sql(dialect.paramstyle), tuple(arrays)
        )
        return set(result.scalars().all())  # one fetchall, not a fetch per row
    # SQLite: the transaction holds the database's only write lock (BEGIN IMMEDIATE), so no
    # one can store these ids between the look-up and the insert. A plain executemany after a
    # look-up by primary key cost less CPU per row than a multi-row INSERT … RETURNING in a
    # one-off test; a plain INSERT (not OR IGNORE) fails loudly should that lock be missing.
    ids = [row.event_id for row in ordered]
    stored: set[str] = set()
    for start in range(0, len(ids), _SQLITE_MAX_PARAMS - 1):
        chunk = ids[start : start + _SQLITE_MAX_PARAMS - 1]
        result = await connection.exec_driver_sql(
            _sqlite_stored_ids_sql(len(chunk)), (tenant_id, *chunk)
        )
        stored.update(result.scalars().all())
    received_us = to_epoch_us(received_at)
    new_ids: set[str] = set()
    params: list[tuple[Any, ...]] = []
    for row in ordered:
        event_id = row.event_id
        if event_id in stored or event_id in new_ids:
            continue
        new_ids.add(event_id)
        occurred_us = to_epoch_us(row.occurred_at)  # UTCDateTime's SQLite form
        params.append(
            (tenant_id, *row[:_OCCURRED], occurred_us, *row[_OCCURRED + 1 :], received_us)
        )
    if params:
        await connection.exec_driver_sql(_SQLITE_INSERT, params)
    return new_ids


async def insert_interactions(
    session: AsyncSession, tenant_id: str, links: Sequence[InteractionLink]
) -> None:
    """Store the conversation fields of newly stored interaction events (ids are new)."""
    if links:
        await session.execute(
            insert(Interaction),
            [{"tenant_id": tenant_id, **link._asdict()} for link in links],
        )


# --- event_daily ----------------------------------------------------------------------------------

_DAILY_COLUMNS = "tenant_id, day, type, content_id, ad_id, events, watch_seconds, watch_events"
_DAILY_UPSERT = (
    "ON CONFLICT (tenant_id, day, type, content_id, ad_id) DO UPDATE SET "
    "events = event_daily.events + excluded.events, "
    "watch_seconds = event_daily.watch_seconds + excluded.watch_seconds, "
    "watch_events = event_daily.watch_events + excluded.watch_events"
)
_SQLITE_DAILY_ROWS_PER_STATEMENT = _SQLITE_MAX_PARAMS // 8


@lru_cache(maxsize=4)
def _postgres_daily_sql(paramstyle: str) -> str:
    p = [_placeholder(paramstyle, i) for i in range(1, 9)]
    return (
        f"INSERT INTO event_daily ({_DAILY_COLUMNS}) "
        f"SELECT {p[0]}::text, u.* FROM unnest({p[1]}::timestamptz[], {p[2]}::text[], "
        f"{p[3]}::text[], {p[4]}::text[], {p[5]}::bigint[], {p[6]}::float8[], {p[7]}::bigint[]) "
        f"AS u {_DAILY_UPSERT}"
    )


@lru_cache(maxsize=64)
def _sqlite_daily_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO event_daily ({_DAILY_COLUMNS}) VALUES {values} {_DAILY_UPSERT}"


async def add_to_daily(
    session: AsyncSession, tenant_id: str, sums: Mapping[DailyKey, DailySums]
) -> None:
    """Add ``sums`` to ``event_daily``: one upsert, in key order.

    Meant for the end of the transaction, just before the caller commits: the upserted rows
    stay locked until then, so concurrent batches touching the same day and content wait only
    for that commit; the key order rules out deadlocks between them.
    """
    if not sums:
        return
    keys = sorted(sums)
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        columns: list[list[Any]] = [[] for _ in range(7)]
        for key in keys:
            acc = sums[key]
            columns[0].append(from_epoch_us(key[0]))
            columns[1].append(key[1])
            columns[2].append(key[2])
            columns[3].append(key[3])
            columns[4].append(acc.events)
            columns[5].append(acc.watch_seconds)
            columns[6].append(acc.watch_events)
        await connection.exec_driver_sql(
            _postgres_daily_sql(dialect.paramstyle), (tenant_id, *columns)
        )
        return
    for start in range(0, len(keys), _SQLITE_DAILY_ROWS_PER_STATEMENT):
        chunk = keys[start : start + _SQLITE_DAILY_ROWS_PER_STATEMENT]
        flat: list[Any] = []
        for key in chunk:
            acc = sums[key]
            flat += (tenant_id, *key, acc.events, acc.watch_seconds, acc.watch_events)
        await connection.exec_driver_sql(_sqlite_daily_sql(len(chunk)), tuple(flat))


# --- the rejected store ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """One kept rejection, as the listing returns it."""

    id: str
    index: int
    event_id: str | None
    errors: list[str]
    payload: Any  # the event exactly as it was received, whatever JSON value it was
    received_at: dt.datetime


def _strip_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB cannot hold U+0000; the stored copy gets U+FFFD instead."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_strip_nul(item) for item in value]
    if isinstance(value, dict):
        return {_strip_nul(key): _strip_nul(item) for key, item in value.items()}
    return value


def rejected_id(received_at: dt.datetime, index: int) -> str:
    """Sorts in arrival order: received microseconds, batch index, random tie-breaker."""
    return f"{to_epoch_us(received_at):016d}-{index:04d}-{secrets.token_hex(6)}"


async def store_rejections(
    session: AsyncSession,
    tenant_id: str,
    rejections: Sequence[Rejection],
    *,
    received_at: dt.datetime,
) -> None:
    if not rejections:
        return
    params = []
    for rejection in rejections:
        payload = rejection.payload
        if b"\\u0000" in orjson.dumps(payload):
            payload = _strip_nul(payload)
        event_id = rejection.event_id
        params.append(
            {
                "tenant_id": tenant_id,
                "id": rejected_id(received_at, rejection.index),
                "batch_index": rejection.index,
                "event_id": event_id.replace("\x00", "\ufffd") if event_id else event_id,
                "errors": [error.replace("\x00", "\ufffd") for error in rejection.errors],
                "payload": payload,
                "received_at": received_at,
            }
        )
    await session.execute(insert(_REJECTED_TABLE), params)


_REJECTED_PAGE = select(
    RejectedEvent.id,
    RejectedEvent.batch_index,
    RejectedEvent.event_id,
    RejectedEvent.errors,
    RejectedEvent.payload,
    RejectedEvent.received_at,
)


async def list_rejected(
    session: AsyncSession, tenant_id: str, *, limit: int, after: str | None
) -> tuple[list[RejectedRecord], str | None]:
    """One page of the tenant's rejected events in arrival order; returns (rows, next id)."""
    query = _REJECTED_PAGE.where(RejectedEvent.tenant_id == tenant_id)
    if after is not None:
        query = query.where(RejectedEvent.id > after)
    result = await session.execute(query.order_by(RejectedEvent.id).limit(limit + 1))
    records = [RejectedRecord(*row) for row in result]
    if len(records) > limit:
        records = records[:limit]
        return records, records[-1].id
    return records, None


def events_in(
    tenant_id: str, types: Collection[str], start: dt.datetime, end: dt.datetime
) -> list[ColumnElement[bool]]:
    """The conditions that select a tenant's events of ``types`` that occurred in
    ``[start, end)`` (for the reads of reports and experiments)."""
    kinds = list(types)
    return [
        Event.tenant_id == tenant_id,
        Event.occurred_at >= start,
        Event.occurred_at < end,
        Event.type == kinds[0] if len(kinds) == 1 else Event.type.in_(kinds),
    ]
