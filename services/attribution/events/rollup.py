"""What newly stored events add to ``event_daily``: pure, no database.

One row per UTC day, type, content and ad: the events counted, and the sum and count of the
numeric ``properties.watch_seconds`` of watch events (``WATCH_TYPES``). Reports read whole
days from there and only the partial days at a range's edges from ``events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from services.attribution.events.validation import EventRow
from shared.vocabulary import WATCH_TYPES

DAY_US = 86_400 * 1_000_000
#: ``(day start in epoch µs, type, content_id or "", ad_id or "")``
DailyKey = tuple[int, str, str, str]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass(slots=True)
class DailySums:
    events: int = 0
    watch_seconds: float = 0.0
    watch_events: int = 0


def daily_rollup(rows: Iterable[EventRow]) -> dict[DailyKey, DailySums]:
    """What newly stored rows add to ``event_daily``, by UTC day, type, content and ad."""
    by_date: dict[tuple[dt.date, str, str, str], DailySums] = {}
    for row in rows:
        event_type = row.type
        # occurred_at is UTC already: its date is the UTC day.
        key = (row.occurred_at.date(), event_type, row.content_id or "", row.ad_id or "")
        acc = by_date.get(key)
        if acc is None:
            acc = by_date[key] = DailySums()
        acc.events += 1
        properties = row.properties
        if event_type in WATCH_TYPES and properties is not None:
            seconds = orjson.loads(properties).get("watch_seconds")
            if type(seconds) is int or type(seconds) is float:  # a JSON number (not a bool)
                acc.watch_seconds += seconds
                acc.watch_events += 1
    return {
        (day_start_us(day), event_type, content, ad): acc
        for (day, event_type, content, ad), acc in by_date.items()
    }


def day_start_us(day: dt.date) -> int:
    """Midnight UTC of ``day`` in epoch microseconds (how ``UTCDateTime`` stores it on SQLite)."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_US
