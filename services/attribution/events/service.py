"""Event ingest: parse a batch, validate each event on its own, store the good ones once.

The pure part (``parse_batch``, ``validate_event``, ``partition_batch``) needs no database and
no HTTP. The storage part (``ingest``, ``store_events``) runs inside the caller's transaction
and leaves the commit to it; ``record_metrics`` is called once the commit went through.

Rules (DESIGN §8, CONTRACT "Event"):

- ids match ``[A-Za-z0-9._:-]{1,128}``; ``type`` and ``platform`` come from fixed lists;
  ``occurred_at`` is ISO-8601 with an offset, at most ``max_future_seconds`` ahead;
  ``properties`` is a JSON object of at most 4 KiB serialised; unknown fields are refused.
- ``content_id`` is required except for ``add_to_cart`` (which needs ``product_id``) and
  ``follow``. An event without ``content_id`` whose ``click_id`` names a known click (a stored
  ``click`` of the tenant, else a valid click earlier in the same batch) takes that click's
  ``content_id``, and its ``product_id`` and ``ad_id`` where it has none, before that check.
- ``(tenant_id, event_id)`` is the idempotency key: one ``INSERT … ON CONFLICT DO NOTHING
  RETURNING event_id`` per batch tells new events from duplicates, race-free.
- Every refused event is kept in ``rejected_events`` with its reasons, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.core.metrics import EVENTS_RECEIVED
from services.attribution.credit import reattribution
from services.attribution.events.schemas import EVENT_TYPES, MAX_PROPERTIES_BYTES, PLATFORMS
from services.attribution.models import Event, RejectedEvent
from shared.db import from_epoch_us, to_epoch_us
from shared.errors import BadRequest, PayloadTooLarge, UnprocessableEntity

ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EVENT_FIELDS = frozenset(
    {
        "event_id",
        "type",
        "occurred_at",
        "user_id",
        "content_id",
        "product_id",
        "ad_id",
        "click_id",
        "session_id",
        "platform",
        "properties",
    }
)
OPTIONAL_IDS = ("content_id", "product_id", "ad_id", "click_id", "session_id")
# Touches: what can change an order's attribution (DESIGN §5).
TOUCH_TYPES = frozenset({"click", "view", "view_complete", "live_enter"})
INVALID_TYPE_LABEL = "invalid"

_ALLOWED_FIELDS_TEXT = ", ".join(sorted(EVENT_FIELDS))
_TYPES_TEXT = ", ".join(sorted(EVENT_TYPES))
_PLATFORMS_TEXT = ", ".join(sorted(PLATFORMS))
_EVENTS_TABLE = cast(Table, Event.__table__)
_REJECTED_TABLE = cast(Table, RejectedEvent.__table__)
_UTC = dt.UTC


# --- pure part ------------------------------------------------------------------------------


class ClickContext(NamedTuple):
    """What an event inherits from the click it names."""

    content_id: str | None
    product_id: str | None
    ad_id: str | None


@dataclass(slots=True)
class EventCheck:
    """One event's verdict: ``row`` (column values) when valid, else ``errors``."""

    row: dict[str, Any] | None
    errors: list[str]


@dataclass(slots=True)
class Rejection:
    index: int
    event_id: str | None
    errors: list[str]
    payload: Any
    type_label: str  # the event's type when it is a known one, else "invalid"


@dataclass(slots=True)
class BatchPartition:
    received: int
    rows: list[dict[str, Any]]  # valid events, first occurrence of each event_id, batch order
    repeated_types: list[str]  # types of later occurrences of an event_id within the batch
    rejected: list[Rejection]


@dataclass(slots=True)
class IngestOutcome:
    received: int
    accepted_types: list[str] = field(default_factory=list)
    duplicate_types: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.accepted_types)

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_types)

    def result(self) -> dict[str, Any]:
        """The answer body (``IngestResult``)."""
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {"index": r.index, "event_id": r.event_id, "errors": r.errors}
                for r in self.rejected
            ],
        }


def _show(value: Any, limit: int = 60) -> str:
    """A value quoted for an error message: repr (control characters escaped), truncated."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _id_error(name: str, value: Any) -> str:
    if isinstance(value, str):
        return (
            f"`{name}` must be 1–128 characters from letters, digits and . _ : - "
            f"(got {_show(value)})"
        )
    return f"`{name}` must be a string (got {_json_type(value)} {_show(value)})"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def parse_timestamp(
    value: Any, *, now: dt.datetime, max_future_seconds: int
) -> tuple[dt.datetime | None, str | None]:
    """``occurred_at`` → an aware UTC datetime, or the reason it is refused."""
    if not isinstance(value, str):
        return None, f"`occurred_at` must be an ISO-8601 string (got {_json_type(value)})"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None, (
            f"`occurred_at` {_show(value)} is not an ISO-8601 timestamp "
            "(e.g. 2024-05-01T12:00:00+08:00)"
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None, (
            f"`occurred_at` {_show(value)} has no timezone offset; send one "
            "(e.g. 2024-05-01T12:00:00Z or 2024-05-01T20:00:00+08:00)"
        )
    try:
        parsed = parsed.astimezone(_UTC)
    except OverflowError:
        return None, f"`occurred_at` {_show(value)} is out of range"
    ahead = (parsed - now).total_seconds()
    if ahead > max_future_seconds:
        return None, (
            f"`occurred_at` is {ahead:.0f} s in the future; at most {max_future_seconds} s "
            "ahead is accepted (check the sender's clock)"
        )
    return parsed, None


def validate_event(
    raw: Any,
    *,
    now: dt.datetime,
    max_future_seconds: int = 300,
    clicks: Mapping[str, ClickContext] | None = None,
) -> EventCheck:
    """Validate one decoded event; ``clicks`` are the known clicks it may inherit from.

    Every problem is reported, not just the first. The row holds the ``events`` columns but
    ``tenant_id`` and ``received_at``; ``properties`` is already serialised (JSON text).
    """
    if type(raw) is not dict:
        return EventCheck(None, [f"an event must be a JSON object (got {_json_type(raw)})"])
    errors: list[str] = []
    get = raw.get

    if not EVENT_FIELDS.issuperset(raw):
        unknown = ", ".join(f"`{name}`" for name in sorted(set(raw) - EVENT_FIELDS))
        errors.append(f"unknown field(s) {unknown}; allowed: {_ALLOWED_FIELDS_TEXT}")

    event_id = get("event_id")
    if event_id is None:
        errors.append("`event_id` is required")
    elif type(event_id) is not str or ID_RE.fullmatch(event_id) is None:
        errors.append(_id_error("event_id", event_id))

    event_type = get("type")
    if event_type is None:
        errors.append("`type` is required")
    elif type(event_type) is not str or event_type not in EVENT_TYPES:
        errors.append(f"`type` {_show(event_type)} is not one of: {_TYPES_TEXT}")

    occurred_raw = get("occurred_at")
    occurred_at: dt.datetime | None = None
    if occurred_raw is None:
        errors.append("`occurred_at` is required")
    else:
        occurred_at, problem = parse_timestamp(
            occurred_raw, now=now, max_future_seconds=max_future_seconds
        )
        if problem is not None:
            errors.append(problem)

    user_id = get("user_id")
    if user_id is None:
        errors.append("`user_id` is required")
    elif type(user_id) is not str or ID_RE.fullmatch(user_id) is None:
        errors.append(_id_error("user_id", user_id))

    ids: dict[str, str | None] = {}
    for name in OPTIONAL_IDS:
        value = get(name)
        if value is not None and (type(value) is not str or ID_RE.fullmatch(value) is None):
            errors.append(_id_error(name, value))
            value = None
        ids[name] = value

    platform = get("platform")
    if platform is not None and (type(platform) is not str or platform not in PLATFORMS):
        errors.append(f"`platform` {_show(platform)} is not one of: {_PLATFORMS_TEXT}")

    properties = get("properties")
    properties_json: str | None = None
    if properties is not None:
        if type(properties) is not dict:
            errors.append(f"`properties` must be a JSON object (got {_json_type(properties)})")
        else:
            encoded = orjson.dumps(properties)
            if len(encoded) > MAX_PROPERTIES_BYTES:
                errors.append(
                    f"`properties` is {len(encoded)} bytes serialised; "
                    f"at most {MAX_PROPERTIES_BYTES} are accepted"
                )
            elif b"\\u0000" in encoded:
                errors.append("`properties` must not contain NUL characters")
            else:
                properties_json = encoded.decode()

    if errors:
        return EventCheck(None, errors)

    content_id = ids["content_id"]
    product_id = ids["product_id"]
    ad_id = ids["ad_id"]
    click_id = ids["click_id"]
    if content_id is None and click_id is not None and clicks:
        source = clicks.get(click_id)
        if source is not None:
            content_id = source.content_id
            product_id = product_id if product_id is not None else source.product_id
            ad_id = ad_id if ad_id is not None else source.ad_id

    if event_type == "add_to_cart":
        if product_id is None:
            errors.append(
                "`product_id` is required for type `add_to_cart` "
                "(or a `click_id` of a known click to inherit it from)"
            )
    elif event_type != "follow" and content_id is None:
        errors.append(
            f"`content_id` is required for type `{event_type}` "
            "(or a `click_id` of a known click to inherit it from)"
        )
    if errors:
        return EventCheck(None, errors)

    row = _event_row(
        event_id,
        event_type,
        occurred_at,
        user_id,
        content_id,
        product_id,
        ad_id,
        click_id,
        ids["session_id"],
        platform,
        properties_json,
    )
    return EventCheck(row, [])


def _event_row(  # the first four are checked (not None) by the callers
    event_id: Any,
    event_type: Any,
    occurred_at: dt.datetime | None,
    user_id: Any,
    content_id: str | None,
    product_id: str | None,
    ad_id: str | None,
    click_id: str | None,
    session_id: str | None,
    platform: str | None,
    properties_json: str | None,  # serialised once, stored as is
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "user_id": user_id,
        "content_id": content_id,
        "product_id": product_id,
        "ad_id": ad_id,
        "click_id": click_id,
        "session_id": session_id,
        "platform": platform,
        "properties": properties_json,
    }


def plain_row(
    raw: Any, *, limit: dt.datetime, clicks: Mapping[str, ClickContext] | None = None
) -> dict[str, Any] | None:
    """The row of an event that passes every check outright, else None.

    The hot path of ingest: most events are well formed, and this checks them with fewer
    steps than :func:`validate_event` (``limit`` is ``now`` plus the allowed clock skew,
    computed once per batch). Anything unusual - a missing or mistyped field, a click to
    inherit from - returns None, and the caller asks :func:`validate_event`, which gives
    the reasons. Whenever this returns a row, it is the row ``validate_event`` returns
    (a property test holds the two together).
    """
    if type(raw) is not dict or not EVENT_FIELDS.issuperset(raw):
        return None
    get = raw.get
    event_id = get("event_id")
    event_type = get("type")
    occurred_raw = get("occurred_at")
    user_id = get("user_id")
    if (
        type(event_id) is not str
        or type(user_id) is not str
        or type(occurred_raw) is not str
        or type(event_type) is not str
        or event_type not in EVENT_TYPES
        or _id_ok(event_id) is None
        or _id_ok(user_id) is None
    ):
        return None
    content_id = get("content_id")
    product_id = get("product_id")
    ad_id = get("ad_id")
    click_id = get("click_id")
    session_id = get("session_id")
    for value in (content_id, product_id, ad_id, click_id, session_id):
        if value is not None and (type(value) is not str or _id_ok(value) is None):
            return None
    if content_id is None:
        if click_id is not None and clicks and click_id in clicks:
            return None  # inherits from a known click: the full path
        if event_type == "add_to_cart":
            if product_id is None:
                return None
        elif event_type != "follow":
            return None
    elif event_type == "add_to_cart" and product_id is None:
        return None
    platform = get("platform")
    if platform is not None and (type(platform) is not str or platform not in PLATFORMS):
        return None
    properties = get("properties")
    properties_json: str | None = None
    if properties is not None:
        if type(properties) is not dict:
            return None
        encoded = orjson.dumps(properties)
        if len(encoded) > MAX_PROPERTIES_BYTES or b"\\u0000" in encoded:
            return None
        properties_json = encoded.decode()
    try:
        occurred_at = _fromisoformat(occurred_raw)
        if occurred_at.utcoffset() is None:
            return None
        occurred_at = occurred_at.astimezone(_UTC)
    except (ValueError, OverflowError):
        return None
    if occurred_at > limit:
        return None
    return _event_row(
        event_id,
        event_type,
        occurred_at,
        user_id,
        content_id,
        product_id,
        ad_id,
        click_id,
        session_id,
        platform,
        properties_json,
    )


_id_ok = ID_RE.fullmatch
_fromisoformat = dt.datetime.fromisoformat


def clicks_to_resolve(raw_events: Iterable[Any]) -> set[str]:
    """The ``click_id``s that events without ``content_id`` may inherit from."""
    wanted: set[str] = set()
    for raw in raw_events:
        if type(raw) is dict and raw.get("content_id") is None:
            click_id = raw.get("click_id")
            if type(click_id) is str and ID_RE.fullmatch(click_id) is not None:
                wanted.add(click_id)
    return wanted


def _type_label(raw: Any) -> str:
    event_type = raw.get("type") if type(raw) is dict else None
    if type(event_type) is str and event_type in EVENT_TYPES:
        return event_type
    return INVALID_TYPE_LABEL


def _raw_event_id(raw: Any) -> str | None:
    event_id = raw.get("event_id") if type(raw) is dict else None
    return event_id[:256] if type(event_id) is str else None


def partition_batch(
    raw_events: Sequence[Any],
    *,
    now: dt.datetime,
    max_future_seconds: int = 300,
    stored_clicks: Mapping[str, ClickContext] | None = None,
) -> BatchPartition:
    """Split a decoded batch into valid rows (deduplicated by event_id) and rejections.

    ``stored_clicks`` are the tenant's stored clicks for ``clicks_to_resolve(raw_events)``;
    valid clicks of the batch are added as they come, so only earlier ones count.
    """
    clicks: dict[str, ClickContext] = dict(stored_clicks or {})
    rows: list[dict[str, Any]] = []
    repeated: list[str] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    limit = now + dt.timedelta(seconds=max_future_seconds)
    for index, raw in enumerate(raw_events):
        row = plain_row(raw, limit=limit, clicks=clicks)
        if row is None:
            check = validate_event(
                raw, now=now, max_future_seconds=max_future_seconds, clicks=clicks
            )
            row = check.row
            if row is None:
                rejected.append(
                    Rejection(index, _raw_event_id(raw), check.errors, raw, _type_label(raw))
                )
                continue
        event_id = row["event_id"]
        if event_id in seen:
            repeated.append(row["type"])
            continue
        seen.add(event_id)
        rows.append(row)
        if row["type"] == "click" and row["click_id"] is not None:
            clicks.setdefault(
                row["click_id"], ClickContext(row["content_id"], row["product_id"], row["ad_id"])
            )
    return BatchPartition(len(raw_events), rows, repeated, rejected)


class MalformedJSON(BadRequest):
    type_slug, title = "malformed-json", "Malformed JSON"


def parse_batch(body: bytes | bytearray, *, max_events: int) -> list[Any]:
    """The raw body → the list of decoded events; the shape is checked, not the events."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(
            f"The request body is not valid JSON: {exc.msg} (at byte {exc.pos}).",
            errors=[{"loc": ["body"], "msg": f"malformed JSON: {exc.msg}"}],
        ) from None
    if type(document) is not dict:
        raise UnprocessableEntity(
            f'The body must be a JSON object {{"events": [...]}} (got {_json_type(document)}).',
            errors=[{"loc": ["body"], "msg": "must be an object"}],
        )
    if "events" not in document:
        raise UnprocessableEntity(
            'The body must be a JSON object {"events": [...]}; `events` is missing.',
            errors=[{"loc": ["body", "events"], "msg": "required"}],
        )
    extra = sorted(set(document) - {"events"})
    if extra:
        raise UnprocessableEntity(
            f"Unknown top-level field(s): {', '.join(extra)}; only `events` is allowed.",
            errors=[
                {"loc": ["body", name], "msg": "unknown field (not allowed)"} for name in extra
            ],
        )
    events = document["events"]
    if type(events) is not list:
        raise UnprocessableEntity(
            f"`events` must be a list of events (got {_json_type(events)}).",
            errors=[{"loc": ["body", "events"], "msg": "must be a list"}],
        )
    if not events:
        raise UnprocessableEntity(
            f"`events` is empty; send 1 to {max_events:,} events.",
            errors=[{"loc": ["body", "events"], "msg": "must hold at least one event"}],
        )
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"The batch holds {len(events)} events; at most {max_events} are accepted per "
            "request. Split it."
        )
    return events


# --- storage ----------------------------------------------------------------------------------


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


# What a validated row carries; the tenant and the arrival time are added at insert.
_ROW_COLUMNS = tuple(
    column.name
    for column in _EVENTS_TABLE.columns
    if column.name not in ("tenant_id", "received_at")
)
# Column order of the hand-written INSERTs below.
_EVENT_COLUMNS = ("tenant_id", *_ROW_COLUMNS, "received_at")
_row_values = itemgetter(*_ROW_COLUMNS)
_OCCURRED = _ROW_COLUMNS.index("occurred_at")
_COLUMN_LIST = ", ".join(_EVENT_COLUMNS)
_CONFLICT = "ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id"
# SQLite refuses statements with more bound parameters than this (3.32+ default: 32,766).
_SQLITE_MAX_PARAMS = 32_766
_SQLITE_INSERT = (
    f"INSERT INTO events ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(_EVENT_COLUMNS))})"
)


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
        for i, name in enumerate(_ROW_COLUMNS)
    )
    selected = ", ".join(
        "u.properties::jsonb" if name == "properties" else f"u.{name}" for name in _ROW_COLUMNS
    )
    tenant = _placeholder(paramstyle, 1)
    received = _placeholder(paramstyle, len(_ROW_COLUMNS) + 2)
    return (
        f"INSERT INTO events ({_COLUMN_LIST}) "
        f"SELECT {tenant}::text, {selected}, {received}::timestamptz "
        f"FROM unnest({arrays}) AS u({', '.join(_ROW_COLUMNS)}) {_CONFLICT}"
    )


@lru_cache(maxsize=64)
def _sqlite_stored_ids_sql(ids: int) -> str:
    """The event_ids among ``ids`` given ones that are stored already (cached by count)."""
    marks = ", ".join("?" * ids)
    return f"SELECT event_id FROM events WHERE tenant_id = ? AND event_id IN ({marks})"


async def _insert_events(
    session: AsyncSession, tenant_id: str, rows: Sequence[dict[str, Any]], received_at: dt.datetime
) -> set[str]:
    """Insert ``rows`` (already valid, unique event_ids); returns the event_ids that were new.

    This is the ingest hot path, so it talks to the driver in its own terms and skips the
    per-value type processing of SQLAlchemy's Core: timestamps go as datetimes (PostgreSQL)
    or epoch microseconds (SQLite, as ``UTCDateTime`` stores them), ``properties`` as the
    JSON text that validation already serialised. PostgreSQL: one ``INSERT … ON CONFLICT DO
    NOTHING RETURNING`` per batch; SQLite: a look-up of the ids, then one executemany.
    """
    connection = await session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        arrays: list[Any] = [tenant_id]
        for name in _ROW_COLUMNS:
            arrays.append([row[name] for row in rows])
        arrays.append(received_at)
        result = await connection.exec_driver_sql(
            _postgres_insert_sql(dialect.paramstyle), tuple(arrays)
        )
        return set(result.scalars().all())  # one fetchall, not a fetch per row
    # SQLite: the transaction holds the database's only write lock (BEGIN IMMEDIATE), so no
    # one can store these ids between the look-up and the insert. A plain executemany after a
    # look-up by primary key cost less CPU per row than a multi-row INSERT … RETURNING in a
    # one-off test; a plain INSERT (not OR IGNORE) fails loudly should that lock be missing.
    ids = [row["event_id"] for row in rows]
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
    for row in rows:
        event_id = row["event_id"]
        if event_id in stored or event_id in new_ids:
            continue
        new_ids.add(event_id)
        values = list(_row_values(row))
        values[_OCCURRED] = to_epoch_us(values[_OCCURRED])  # UTCDateTime's SQLite form
        params.append((tenant_id, *values, received_us))
    if params:
        await connection.exec_driver_sql(_SQLITE_INSERT, params)
    return new_ids


async def store_events(
    session: AsyncSession,
    tenant_id: str,
    rows: Sequence[dict[str, Any]],
    *,
    received_at: dt.datetime,
) -> list[dict[str, Any]]:
    """Insert valid rows (unique event_ids) in one statement; returns those that were new.

    ``ON CONFLICT DO NOTHING`` makes the key decide, so concurrent overlapping batches store
    each event once. Rows go in event_id order so two such transactions on PostgreSQL take
    their row locks in the same order and cannot deadlock. The newly stored touches are then
    handed to the late-data hook, and the new rows added to ``event_daily``, in the same
    transaction.
    """
    if not rows:
        return []
    ordered = sorted(rows, key=lambda row: row["event_id"])
    new_ids = await _insert_events(session, tenant_id, ordered, received_at)
    stored = [row for row in rows if row["event_id"] in new_ids]
    touches = [
        reattribution.StoredTouch(
            event_id=row["event_id"],
            type=row["type"],
            occurred_at=row["occurred_at"],
            user_id=row["user_id"],
            click_id=row["click_id"],
        )
        for row in stored
        if row["type"] in TOUCH_TYPES
    ]
    if touches:
        await reattribution.reattribute_after_events(session, tenant_id, touches)
    await add_to_daily(session, tenant_id, stored)  # late in the transaction: see there
    return stored


DAY_US = 86_400 * 1_000_000
# Events whose ``properties.watch_seconds`` reports sum (DESIGN §7).
WATCH_TYPES = frozenset({"view", "view_complete"})
#: ``(day start in epoch µs, type, content_id or "", ad_id or "")``
DailyKey = tuple[int, str, str, str]


@dataclass(slots=True)
class DailySums:
    events: int = 0
    watch_seconds: float = 0.0
    watch_events: int = 0


def daily_rollup(rows: Iterable[Mapping[str, Any]]) -> dict[DailyKey, DailySums]:
    """What newly stored rows add to ``event_daily``, by UTC day, type, content and ad."""
    by_date: dict[tuple[dt.date, str, str, str], DailySums] = {}
    for row in rows:
        event_type = row["type"]
        # occurred_at is UTC already: its date is the UTC day.
        key = (row["occurred_at"].date(), event_type, row["content_id"] or "", row["ad_id"] or "")
        acc = by_date.get(key)
        if acc is None:
            acc = by_date[key] = DailySums()
        acc.events += 1
        properties = row["properties"]
        if event_type in WATCH_TYPES and properties is not None:
            seconds = orjson.loads(properties).get("watch_seconds")
            if type(seconds) is int or type(seconds) is float:  # a JSON number (not a bool)
                acc.watch_seconds += seconds
                acc.watch_events += 1
    return {
        (_day_start_us(day), event_type, content, ad): acc
        for (day, event_type, content, ad), acc in by_date.items()
    }


def _day_start_us(day: dt.date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_US


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


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
    session: AsyncSession, tenant_id: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Add newly stored rows to ``event_daily``: one upsert, in key order.

    Called at the end of ``store_events``, just before the caller commits: the upserted rows
    stay locked until then, so concurrent batches touching the same day and content wait only
    for that commit; the key order rules out deadlocks between them.
    """
    sums = daily_rollup(rows)
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


async def ingest(
    session: AsyncSession,
    tenant_id: str,
    raw_events: Sequence[Any],
    *,
    now: dt.datetime,
    max_future_seconds: int,
) -> IngestOutcome:
    """Validate and store one decoded batch in the session's transaction (no commit)."""
    batch = await validate_batch(
        session, tenant_id, raw_events, now=now, max_future_seconds=max_future_seconds
    )
    return await store_batch(session, tenant_id, batch, now=now)


async def validate_batch(
    session: AsyncSession,
    tenant_id: str,
    raw_events: Sequence[Any],
    *,
    now: dt.datetime,
    max_future_seconds: int,
) -> BatchPartition:
    """Validate one decoded batch; reads the stored clicks its events may inherit from."""
    stored_clicks = await load_clicks(session, tenant_id, clicks_to_resolve(raw_events))
    return partition_batch(
        raw_events, now=now, max_future_seconds=max_future_seconds, stored_clicks=stored_clicks
    )


async def store_batch(
    session: AsyncSession, tenant_id: str, batch: BatchPartition, *, now: dt.datetime
) -> IngestOutcome:
    """Store a validated batch (its new events and its rejections) in the session's transaction."""
    stored = await store_events(session, tenant_id, batch.rows, received_at=now)
    await store_rejections(session, tenant_id, batch.rejected, received_at=now)
    outcome = IngestOutcome(received=batch.received, rejected=batch.rejected)
    outcome.accepted_types = [row["type"] for row in stored]
    if len(stored) == len(batch.rows):
        outcome.duplicate_types = batch.repeated_types
    else:
        new_ids = {row["event_id"] for row in stored}
        outcome.duplicate_types = [
            row["type"] for row in batch.rows if row["event_id"] not in new_ids
        ] + batch.repeated_types
    return outcome


def record_metrics(outcome: IngestOutcome) -> None:
    """Count outcomes in ``clipfunnel_events_received_total`` (after the commit)."""
    counts: Counter[tuple[str, str]] = Counter()
    for event_type in outcome.accepted_types:
        counts[event_type, "accepted"] += 1
    for event_type in outcome.duplicate_types:
        counts[event_type, "duplicate"] += 1
    for rejection in outcome.rejected:
        counts[rejection.type_label, "rejected"] += 1
    for (event_type, result), count in counts.items():
        EVENTS_RECEIVED.labels(event_type, result).inc(count)


# --- the rejected store -----------------------------------------------------------------------


async def list_rejected(
    session: AsyncSession, tenant_id: str, *, limit: int, after: str | None
) -> tuple[list[RejectedEvent], str | None]:
    """One page of the tenant's rejected events in arrival order; returns (rows, next id)."""
    query = select(RejectedEvent).where(RejectedEvent.tenant_id == tenant_id)
    if after is not None:
        query = query.where(RejectedEvent.id > after)
    rows = list((await session.scalars(query.order_by(RejectedEvent.id).limit(limit + 1))).all())
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, rows[-1].id
    return rows, None
