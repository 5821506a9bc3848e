"""Local-time buckets for reports: pure functions, no database.

Reports bucket by the tenant's timezone, DST included: a local day is 23, 24 or 25 hours
long, and an hour bucket is one real hour (the repeated 01:00 of a fall-back night is two
buckets, told apart by their UTC offset; the skipped 02:00 of a spring-forward night is none).

A bucket boundary is an instant where the local (date, hour, offset) — or, for days, the local
date — changes. Every such instant is a local wall-clock hour or midnight resolved with either
fold, so boundaries are found by converting those candidates and keeping the ones where the
key really changes.

The database groups rows by fixed UTC *slots* counted from an ``origin``: 15 minutes, because
every UTC offset in use since the 1970s is a multiple of 15 minutes, so each local hour and day
boundary is a slot boundary and each slot lies in exactly one bucket. Where a boundary is not
(local mean time, before ~1900), the slot shrinks to the largest size that divides every
boundary, so the mapping stays exact.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

Interval = Literal["hour", "day"]
INTERVALS: tuple[Interval, ...] = ("hour", "day")
DEFAULT_SLOT_SECONDS = 900
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_UTC = dt.UTC
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Bucket starts (UTC, ascending) over a range, and the slot size that respects them."""

    interval: Interval
    origin: dt.datetime
    slot_seconds: int
    starts: tuple[dt.datetime, ...]

    def bucket_of_slot(self, slot: int) -> int:
        """The bucket holding slot number ``slot`` (counted from ``origin``)."""
        instant = self.origin + dt.timedelta(seconds=slot * self.slot_seconds)
        return max(bisect.bisect_right(self.starts, instant) - 1, 0)


def _seconds_since_epoch(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return delta.days * 86_400 + delta.seconds  # floor: timedelta keeps microseconds >= 0


def _key(instant: dt.datetime, tz: ZoneInfo, interval: Interval) -> tuple[object, ...]:
    local = instant.astimezone(tz)
    if interval == "day":
        return (local.date(),)
    return (local.date(), local.hour, local.utcoffset())


def _offset(instant: dt.datetime, tz: ZoneInfo) -> dt.timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _transition(before: dt.datetime, after: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The first whole second in ``(before, after)`` with the offset in force just before
    ``after``, given that ``before`` has another offset."""
    old = _offset(before, tz)
    low = _seconds_since_epoch(before)
    high = _seconds_since_epoch(after) - 1
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(_EPOCH + dt.timedelta(seconds=middle), tz) == old:
            low = middle
        else:
            high = middle
    return _EPOCH + dt.timedelta(seconds=high)


def boundaries(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo, interval: Interval
) -> list[dt.datetime]:
    """Bucket starts (UTC) of every bucket overlapping ``[start, end)``, ascending."""
    start, end = start.astimezone(_UTC), end.astimezone(_UTC)
    day = start.astimezone(tz).date() - dt.timedelta(days=1)
    last_day = (end - _TICK).astimezone(tz).date() + dt.timedelta(days=1)
    hours = range(24) if interval == "hour" else range(1)
    found: dict[dt.datetime, dt.timedelta | None] = {}  # boundary -> its UTC offset
    while day <= last_day:
        year, month, mday = day.year, day.month, day.day
        for hour in hours:
            # fold=0 maps a skipped wall time to the jump itself; fold=1 gives the second
            # occurrence of a repeated one.
            first = dt.datetime(year, month, mday, hour, tzinfo=tz).astimezone(_UTC)
            second = dt.datetime(year, month, mday, hour, tzinfo=tz, fold=1).astimezone(_UTC)
            local = first.astimezone(tz)
            if first == second and local.hour == hour and local.day == mday:
                found[first] = local.utcoffset()  # an ordinary wall-clock hour
                continue
            for candidate in (first, second):
                if _key(candidate, tz, interval) != _key(candidate - _TICK, tz, interval):
                    found[candidate] = _offset(candidate, tz)
        day += dt.timedelta(days=1)
    ordered = sorted(found)
    # Offset changes off the hour (Lord Howe's half-hour DST) start a bucket of their own.
    for before, after in itertools.pairwise(ordered):
        if found[before] != found[after] and found[before] != _offset(after - _TICK, tz):
            moment = _transition(before, after, tz)
            if _key(moment, tz, interval) != _key(moment - _TICK, tz, interval):
                found[moment] = _offset(moment, tz)
    ordered = sorted(found)
    # Keep the last boundary at or before start, and every one before end.
    index = max(bisect.bisect_right(ordered, start) - 1, 0)
    return [b for b in ordered[index:] if b < end]


def make_buckets(start: dt.datetime, end: dt.datetime, tz: ZoneInfo, interval: Interval) -> Buckets:
    """Local ``interval`` buckets covering ``[start, end)`` in ``tz``.

    The first and last bucket are whole local hours/days and may reach outside the range;
    only data inside the range is counted in them.
    """
    if start >= end:
        raise ValueError("start must be before end")
    start, end = start.astimezone(_UTC), end.astimezone(_UTC)  # arithmetic in UTC, not wall time
    starts = boundaries(start, end, tz, interval)
    slot = DEFAULT_SLOT_SECONDS
    for boundary in starts:
        slot = math.gcd(slot, _seconds_since_epoch(boundary))
        if boundary.microsecond:  # pragma: no cover - no zone has sub-second offsets
            raise ValueError("bucket boundaries must fall on whole seconds")
    slot = max(slot, 1)
    origin_seconds = _seconds_since_epoch(start)
    origin = _EPOCH + dt.timedelta(seconds=origin_seconds - origin_seconds % slot)
    return Buckets(interval, origin, slot, tuple(starts))


def local_day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant (UTC) whose local date in ``tz`` is ``day``.

    Local midnight, or, where a DST jump skips midnight, the moment of the jump.
    """
    # fold=0 resolves a skipped midnight with the offset before the jump.
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(_UTC)


def spend_days(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> tuple[dt.date, dt.date] | None:
    """The local days whose start falls in ``[start, end)``: (first, last), or None.

    Spend is booked per local day; a day counts when it *begins* inside the range, so
    consecutive ranges never count a day twice.
    """
    start, end = start.astimezone(_UTC), end.astimezone(_UTC)
    first = start.astimezone(tz).date()
    if local_day_start(first, tz) < start:
        first += dt.timedelta(days=1)
    last = (end - _TICK).astimezone(tz).date()
    if first > last:
        return None
    return first, last
