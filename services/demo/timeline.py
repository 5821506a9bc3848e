"""Time in the simulated month: integer epoch microseconds, and when viewers come.

Instants are ``int`` microseconds since the Unix epoch (UTC) everywhere in the generator: a
million events stay compact and their arithmetic exact. Two models place a viewer's session
on a content's timeline: ``FreeTimes`` leaves it where the viewer's own rhythm put it (a load
test needs volume, not plausibility), ``LocalTimes`` makes it look like a real month to a
person reading the dashboard.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.vocabulary import ContentKind

SECOND = 1_000_000
HOUR = 3_600 * SECOND
DAY = 24 * HOUR
DAYS = 30  # the length of the month
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

CURRENCY = "CNY"
TIMEZONE = "Asia/Shanghai"
TZ = ZoneInfo(TIMEZONE)

# Share of a day's sessions per local hour: lunch and evening peaks.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 7, 6, 4, 4, 4, 5, 6, 8, 10, 11, 9, 5)
HOUR_CUM = tuple(itertools.accumulate(HOUR_WEIGHTS))


def to_us(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


def from_us(t_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=t_us)


def demo_anchor(now: dt.datetime | None = None) -> dt.datetime:
    """Midnight (tenant timezone) of ``now``'s day: the end of the demo month."""
    current = (now or dt.datetime.now(dt.UTC)).astimezone(TZ)
    return dt.datetime(current.year, current.month, current.day, tzinfo=TZ)


class Scheduled(Protocol):
    """What a session-time model needs to know of a content."""

    @property
    def kind(self) -> ContentKind: ...
    @property
    def published_us(self) -> int: ...
    @property
    def started_us(self) -> int | None: ...
    @property
    def ended_us(self) -> int | None: ...


class Times(Protocol):
    def start(self, content: Scheduled, offset_us: int) -> int:
        """When a session begins on ``content`` that the viewer's rhythm put ``offset_us``
        after the month's start (perhaps outside the viewing days)."""
        ...

    def limit(self, content: Scheduled) -> int | None:
        """The latest instant an event of a session on ``content`` may have (None: any)."""
        ...


class FreeTimes:
    """Sessions stay where the viewer's rhythm put them (held inside the viewing days),
    whatever the content."""

    def __init__(self, month_start_us: int, span_us: int) -> None:
        self.month_start_us, self.span_us = month_start_us, span_us

    def start(self, content: Scheduled, offset_us: int) -> int:
        return self.month_start_us + min(self.span_us - 1, max(0, offset_us))

    def limit(self, content: Scheduled) -> int | None:
        return None


class LocalTimes:
    """Sessions follow the tenant's day, come after a video is out, and stay inside a live
    room's window. Deterministic (no random draws): a session keeps its place in the month,
    moved only where a person would see it happen."""

    def __init__(self, month_start_us: int, span_us: int) -> None:
        self.month_start_us, self.span_us = month_start_us, span_us
        offset = from_us(month_start_us).astimezone(TZ).utcoffset() or dt.timedelta(0)
        self.offset_us = to_us(EPOCH + offset)  # the tenant's zone has no daylight saving

    def start(self, content: Scheduled, offset_us: int) -> int:
        # Folded back at the month's edges (a clamp would pile sessions up on its first hour).
        offset_us %= 2 * self.span_us
        if offset_us >= self.span_us:
            offset_us = 2 * self.span_us - 1 - offset_us
        started, ended = content.started_us, content.ended_us
        if content.kind == "live" and started is not None and ended is not None:
            # Viewers enter while the room is live, up to two minutes before it closes.
            return started + offset_us % (ended - started - 2 * 60 * SECOND)
        # Those who would have come before a video was out come after, as long after as they
        # were early: most viewing happens in a video's first days.
        t_us = self.after(content.published_us, self.month_start_us + offset_us)
        return self.after(content.published_us, self.on_the_daily_rhythm(t_us))

    def limit(self, content: Scheduled) -> int | None:
        return content.ended_us if content.kind == "live" else None

    @staticmethod
    def after(published_us: int, t_us: int) -> int:
        return t_us if t_us >= published_us else 2 * published_us - t_us

    def on_the_daily_rhythm(self, t_us: int) -> int:
        """The same local day, its time of day stretched to follow ``HOUR_WEIGHTS``."""
        local = t_us + self.offset_us
        into_day = local % DAY
        target = into_day / DAY * HOUR_CUM[-1]
        hour = bisect.bisect_right(HOUR_CUM, target)
        before = HOUR_CUM[hour - 1] if hour else 0
        within = (target - before) / HOUR_WEIGHTS[hour]
        return t_us - into_day + int((hour + within) * HOUR)
