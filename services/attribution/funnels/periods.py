"""Local periods (day, week from Monday, month) of a timezone over a range: pure.

A period starts at the first instant of its local date (local midnight, or the moment of a
DST jump that skips midnight), so a local day lasts 23, 24 or 25 hours.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

_TICK = dt.timedelta(microseconds=1)


def _period_date(day: dt.date, interval: str) -> dt.date:
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _next_date(day: dt.date, interval: str) -> dt.date:
    if interval == "week":
        return day + dt.timedelta(days=7)
    if interval == "month":
        return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return day + dt.timedelta(days=1)


def local_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant (UTC) of local date ``day`` (fold=0 resolves a skipped midnight)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def periods(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo, interval: str
) -> list[tuple[dt.datetime, dt.datetime]]:
    """``[period start, next period start)`` in UTC of every local period meeting the range."""
    day = _period_date(start.astimezone(tz).date(), interval)
    last = (end - _TICK).astimezone(tz).date()
    out = []
    while day <= last:
        following = _next_date(day, interval)
        out.append((local_start(day, tz), local_start(following, tz)))
        day = following
    return out
