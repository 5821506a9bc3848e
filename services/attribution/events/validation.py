"""Event validation: pure functions, no database, no HTTP, no clock (``now`` is passed in).

Rules:

- ids match ``[A-Za-z0-9._:-]{1,128}``; ``type`` and ``platform`` come from the shared
  vocabulary; ``occurred_at`` is ISO-8601 with an offset, not before 1970 (as every instant
  the APIs take) and at most ``max_future_seconds`` ahead; ``properties`` is a JSON object of
  at most 4 KiB serialised; unknown fields are refused. Every problem of an event is
  reported, not just the first.
- ``content_id`` is required except for ``add_to_cart`` (which needs ``product_id``),
  ``follow`` and the interactions: ``reply`` needs ``reply_to`` (the comment's event_id) and
  ``account_id``, ``dm`` needs ``account_id``, ``dm_reply`` needs ``reply_to`` (the dm's).
  ``reply_to`` need not name a stored event: a reply may arrive before its comment.
  An event without ``content_id`` whose ``click_id`` names a known click (a stored
  ``click`` of the tenant, else a valid click earlier in the same batch) takes that click's
  ``content_id``, and its ``product_id`` and ``ad_id`` where it has none, before that check.

This is the ingest hot path (a few µs per event): the checks of a well-formed event are plain
comparisons in one function, and the messages are built only for what fails.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from services.attribution.events.parsing import json_type
from services.attribution.events.schemas import MAX_PROPERTIES_BYTES
from shared.schemas import EARLIEST, format_utc
from shared.vocabulary import EVENT_TYPES, INTERACTION_TYPES, PLATFORMS, REPLY_TYPES

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
        "reply_to",
        "account_id",
    }
)
OPTIONAL_IDS = ("content_id", "product_id", "ad_id", "click_id", "session_id")
#: The metrics label of a rejected event whose type is not a known one.
INVALID_TYPE_LABEL = "invalid"

_ALLOWED_FIELDS_TEXT = ", ".join(sorted(EVENT_FIELDS))
_TYPES_TEXT = ", ".join(sorted(EVENT_TYPES))
_PLATFORMS_TEXT = ", ".join(sorted(PLATFORMS))
_UTC = dt.UTC
_id_ok = ID_RE.fullmatch
_fromisoformat = dt.datetime.fromisoformat
_new_row = tuple.__new__


class EventRow(NamedTuple):
    """A valid event: the ``events`` columns but ``tenant_id`` and ``received_at``.

    A tuple, in the order the insert sends the columns: cheap to build and to hand to the
    driver, thousands of times per batch.
    """

    event_id: str
    type: str
    occurred_at: dt.datetime  # aware, UTC
    user_id: str
    content_id: str | None
    product_id: str | None
    ad_id: str | None
    click_id: str | None
    session_id: str | None
    platform: str | None
    properties: str | None  # the JSON text, serialised once and stored as is


class InteractionLink(NamedTuple):
    """The conversation fields of a valid ``reply``, ``dm`` or ``dm_reply`` event."""

    event_id: str
    type: str
    occurred_at: dt.datetime
    account_id: str | None
    reply_to: str | None


class ClickContext(NamedTuple):
    """What an event inherits from the click it names."""

    content_id: str | None
    product_id: str | None
    ad_id: str | None


@dataclass(slots=True)
class EventCheck:
    """One event's verdict: ``row`` when valid, else the ``errors``."""

    row: EventRow | None
    errors: list[str]


@dataclass(slots=True)
class Rejection:
    index: int
    event_id: str | None
    errors: list[str]
    payload: Any  # the event exactly as decoded, whatever JSON value it was
    type_label: str  # the event's type when it is a known one, else "invalid"


@dataclass(slots=True)
class BatchPartition:
    received: int
    rows: list[EventRow]  # valid events, first occurrence of each event_id, batch order
    repeated_types: list[str]  # types of later occurrences of an event_id within the batch
    rejected: list[Rejection]
    #: The interaction fields of the valid interaction events among ``rows``.
    links: list[InteractionLink] = field(default_factory=list)


def _show(value: object, limit: int = 60) -> str:
    """A value quoted for an error message: repr (control characters escaped), truncated."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _id_error(name: str, value: object) -> str:
    if isinstance(value, str):
        return (
            f"`{name}` must be 1–128 characters from letters, digits and . _ : - "
            f"(got {_show(value)})"
        )
    return f"`{name}` must be a string (got {json_type(value)} {_show(value)})"


def _required_id_error(name: str, value: object) -> str:
    return f"`{name}` is required" if value is None else _id_error(name, value)


def _timestamp_problem(value: object, now: dt.datetime, latest: dt.datetime) -> str:
    """Why an ``occurred_at`` that :func:`_check` could not take is refused."""
    if type(value) is not str:
        if value is None:
            return "`occurred_at` is required"
        return f"`occurred_at` must be an ISO-8601 string (got {json_type(value)})"
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        return (
            f"`occurred_at` {_show(value)} is not an ISO-8601 timestamp "
            "(e.g. 2024-05-01T12:00:00+08:00)"
        )
    if parsed.utcoffset() is None:
        return (
            f"`occurred_at` {_show(value)} has no timezone offset; send one "
            "(e.g. 2024-05-01T12:00:00Z or 2024-05-01T20:00:00+08:00)"
        )
    try:
        parsed = parsed.astimezone(_UTC)
    except OverflowError:
        return f"`occurred_at` {_show(value)} is out of range"
    if parsed < EARLIEST:
        return f"`occurred_at` {_show(value)} is before {format_utc(EARLIEST)}"
    ahead = (parsed - now).total_seconds()
    allowed = (latest - now).total_seconds()
    return (
        f"`occurred_at` is {ahead:.0f} s in the future; at most {allowed:.0f} s "
        "ahead is accepted (check the sender's clock)"
    )


def validate_event(
    raw: Any,
    *,
    now: dt.datetime,
    max_future_seconds: int = 300,
    clicks: Mapping[str, ClickContext] | None = None,
) -> EventCheck:
    """Validate one decoded event; ``clicks`` are the known clicks it may inherit from."""
    errors: list[str] = []
    row = _check(raw, now, now + dt.timedelta(seconds=max_future_seconds), clicks, errors)
    return EventCheck(row, errors)


def _check(
    raw: Any,
    now: dt.datetime,
    latest: dt.datetime,
    clicks: Mapping[str, ClickContext] | None,
    errors: list[str],
) -> EventRow | None:
    """The row of a valid event, else None with every reason it is refused added to
    ``errors`` (``raw`` is decoded JSON)."""
    if type(raw) is not dict:
        errors.append(f"an event must be a JSON object (got {json_type(raw)})")
        return None
    if not EVENT_FIELDS.issuperset(raw):
        unknown = ", ".join(f"`{name}`" for name in sorted(set(raw) - EVENT_FIELDS))
        errors.append(f"unknown field(s) {unknown}; allowed: {_ALLOWED_FIELDS_TEXT}")
    get: Callable[[str], Any] = raw.get  # decoded JSON values; each is checked below

    event_id = get("event_id")
    if type(event_id) is not str or _id_ok(event_id) is None:
        errors.append(_required_id_error("event_id", event_id))

    event_type = get("type")
    if type(event_type) is not str or event_type not in EVENT_TYPES:
        errors.append(
            "`type` is required"
            if event_type is None
            else f"`type` {_show(event_type)} is not one of: {_TYPES_TEXT}"
        )

    occurred_raw = get("occurred_at")
    occurred_at: dt.datetime | None = None
    # Parsed inline (a call less per event); what is refused gets its reason from
    # _timestamp_problem, which retraces these steps.
    if type(occurred_raw) is str:
        try:
            occurred_at = _fromisoformat(occurred_raw)
            occurred_at = (
                occurred_at.astimezone(_UTC) if occurred_at.utcoffset() is not None else None
            )
        except (ValueError, OverflowError):
            occurred_at = None
        if occurred_at is not None and not EARLIEST <= occurred_at <= latest:
            occurred_at = None
    if occurred_at is None:
        errors.append(_timestamp_problem(occurred_raw, now, latest))

    user_id = get("user_id")
    if type(user_id) is not str or _id_ok(user_id) is None:
        errors.append(_required_id_error("user_id", user_id))

    content_id = get("content_id")
    product_id = get("product_id")
    ad_id = get("ad_id")
    click_id = get("click_id")
    session_id = get("session_id")
    for value in (content_id, product_id, ad_id, click_id, session_id):
        if value is not None and (type(value) is not str or _id_ok(value) is None):
            for name in OPTIONAL_IDS:  # name each bad one, in field order
                bad = get(name)
                if bad is not None and (type(bad) is not str or _id_ok(bad) is None):
                    errors.append(_id_error(name, bad))
            break

    platform = get("platform")
    if platform is not None and (type(platform) is not str or platform not in PLATFORMS):
        errors.append(f"`platform` {_show(platform)} is not one of: {_PLATFORMS_TEXT}")

    properties = get("properties")
    properties_json: str | None = None
    if properties is not None:
        if type(properties) is not dict:
            errors.append(f"`properties` must be a JSON object (got {json_type(properties)})")
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

    reply_to = get("reply_to")
    account_id = get("account_id")
    if reply_to is not None or account_id is not None or event_type in INTERACTION_TYPES:
        _check_interaction(event_type, reply_to, account_id, errors)

    if errors or occurred_at is None:  # (occurred_at is set when no error was found)
        return None

    if content_id is None and click_id is not None and clicks:
        source = clicks.get(click_id)
        if source is not None:
            content_id = source.content_id
            if product_id is None:
                product_id = source.product_id
            if ad_id is None:
                ad_id = source.ad_id
    if event_type == "add_to_cart":
        if product_id is None:
            errors.append(
                "`product_id` is required for type `add_to_cart` "
                "(or a `click_id` of a known click to inherit it from)"
            )
            return None
    elif content_id is None and event_type != "follow" and event_type not in INTERACTION_TYPES:
        errors.append(
            f"`content_id` is required for type `{event_type}` "
            "(or a `click_id` of a known click to inherit it from)"
        )
        return None
    # tuple.__new__ skips the named tuple's Python-level __new__: half the cost of a row.
    return _new_row(
        EventRow,
        (
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
        ),
    )


def _check_interaction(
    event_type: object, reply_to: object, account_id: object, errors: list[str]
) -> None:
    """``reply_to`` and ``account_id``: ids, required by the interactions that need them and
    refused on other types."""
    interaction = event_type in INTERACTION_TYPES
    for name, value, needed in (
        ("reply_to", reply_to, event_type in REPLY_TYPES),
        ("account_id", account_id, event_type in ("reply", "dm")),
    ):
        if value is None:
            if needed:
                errors.append(f"`{name}` is required for type `{event_type}`")
        elif type(value) is not str or _id_ok(value) is None:
            errors.append(_id_error(name, value))
        elif type(event_type) is str and event_type in EVENT_TYPES and not interaction:
            errors.append(f"`{name}` is only taken by the types reply, dm and dm_reply")
        elif name == "reply_to" and event_type == "dm":
            errors.append("`reply_to` is not taken by type `dm` (a dm starts a conversation)")


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
    rows: list[EventRow] = []
    repeated: list[str] = []
    rejected: list[Rejection] = []
    seen: set[str] = set()
    links: list[InteractionLink] = []
    latest = now + dt.timedelta(seconds=max_future_seconds)
    for index, raw in enumerate(raw_events):
        errors: list[str] = []
        row = _check(raw, now, latest, clicks, errors)
        if row is None:
            rejected.append(Rejection(index, _raw_event_id(raw), errors, raw, _type_label(raw)))
            continue
        event_id = row.event_id
        if event_id in seen:
            repeated.append(row.type)
            continue
        seen.add(event_id)
        rows.append(row)
        if row.type in INTERACTION_TYPES:
            links.append(
                InteractionLink(
                    event_id, row.type, row.occurred_at, raw.get("account_id"), raw.get("reply_to")
                )
            )
        if row.type == "click" and row.click_id is not None:
            clicks.setdefault(row.click_id, ClickContext(row.content_id, row.product_id, row.ad_id))
    return BatchPartition(len(raw_events), rows, repeated, rejected, links)
