"""Interaction service metrics as pure functions over plain data (no database, no clock).

A comment is answered by its earliest ``reply`` (``reply_to`` = the comment's event_id); the
delay is that reply's time less the comment's (0 when a skewed clock puts it earlier). DMs
likewise by their earliest ``dm_reply``. Quantiles interpolate linearly between the closest
ranks (the ``inclusive`` method: q = x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋]), h = (n − 1)·q).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Comment:
    event_id: str
    content_id: str
    account_id: str | None  # the content's account, from the catalog
    user_id: str
    occurred_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Message:
    """A viewer's dm to an account."""

    event_id: str
    account_id: str
    user_id: str
    occurred_at: dt.datetime


@dataclass(slots=True)
class Tally:
    """What one account, content or day adds up to."""

    comments: int = 0
    replied_1h: int = 0
    replied_24h: int = 0
    unanswered_24h: int = 0
    reply_seconds: list[float] = field(default_factory=list)
    dms: int = 0
    dms_replied: int = 0
    dm_reply_seconds: list[float] = field(default_factory=list)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def delay(first_reply: dt.datetime, asked: dt.datetime) -> float:
    return max(0.0, (first_reply - asked).total_seconds())


def is_unanswered(comment: Comment, replied: bool, now: dt.datetime) -> bool:
    """Not answered (yet) and more than 24 hours old at ``now``."""
    return not replied and (now - comment.occurred_at).total_seconds() > DAY


@dataclass(slots=True)
class Tallies:
    accounts: dict[str, Tally]
    contents: dict[str, Tally]
    days: dict[dt.date, Tally]
    total: Tally
    unanswered: list[Comment]  # oldest first, then by event_id


def tally(
    comments: Iterable[Comment],
    first_replies: Mapping[str, dt.datetime],
    dms: Iterable[Message],
    first_dm_replies: Mapping[str, dt.datetime],
    *,
    now: dt.datetime,
    tz: ZoneInfo,
) -> Tallies:
    """Each comment and dm counted once in its account, its content (comments), its local day
    and the total. ``first_replies`` maps an event_id to the time of its earliest answer."""
    accounts: defaultdict[str, Tally] = defaultdict(Tally)
    contents: defaultdict[str, Tally] = defaultdict(Tally)
    days: defaultdict[dt.date, Tally] = defaultdict(Tally)
    total = Tally()
    unanswered: list[Comment] = []
    for comment in comments:
        groups = [contents[comment.content_id], days[_day(comment.occurred_at, tz)], total]
        if comment.account_id is not None:
            groups.append(accounts[comment.account_id])
        answered = first_replies.get(comment.event_id)
        seconds = None if answered is None else delay(answered, comment.occurred_at)
        late = is_unanswered(comment, answered is not None, now)
        if late:
            unanswered.append(comment)
        for group in groups:
            group.comments += 1
            if seconds is not None:
                group.reply_seconds.append(seconds)
                group.replied_1h += seconds <= HOUR
                group.replied_24h += seconds <= DAY
            group.unanswered_24h += late
    for message in dms:
        answered = first_dm_replies.get(message.event_id)
        for group in (accounts[message.account_id], days[_day(message.occurred_at, tz)], total):
            group.dms += 1
            if answered is not None:
                group.dms_replied += 1
                group.dm_reply_seconds.append(delay(answered, message.occurred_at))
    unanswered.sort(key=lambda c: (c.occurred_at, c.event_id))
    return Tallies(dict(accounts), dict(contents), dict(days), total, unanswered)


def _day(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()
