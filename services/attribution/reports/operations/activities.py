"""Engagement activities against the time before them, as pure functions (no I/O, no clock).

An activity runs from its campaign's ``starts_at`` to its ``ends_at`` (``now`` while it
runs, or when it has no end); it is compared with the window of the same length just before
it starts. Over each window and the contents of the campaign's ads:

- engagement rate = (likes + comments + shares) / views;
- comments per 1,000 views = comments / views × 1000;
- new follows = follow events.

``change`` = (during − before) / |before|; ``None`` when either is ``None`` or before is 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from services.attribution.reports.metrics import rate

ACTIVITY_EVENT_TYPES = ("view", "like", "comment", "share", "follow")


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.datetime
    end: dt.datetime


def windows(
    starts_at: dt.datetime, ends_at: dt.datetime | None, now: dt.datetime
) -> tuple[Window, Window]:
    """(during, before): the activity's own window and the one of equal length before it."""
    end = now if ends_at is None or ends_at > now else ends_at
    end = max(end, starts_at)
    length = end - starts_at
    return Window(starts_at, end), Window(starts_at - length, starts_at)


@dataclass(frozen=True, slots=True)
class Figures:
    views: int
    likes: int
    comments: int
    shares: int
    follows: int
    engagement_rate: float | None
    comments_per_1000_views: float | None


def figures(counts: Mapping[str, int]) -> Figures:
    views, comments = counts.get("view", 0), counts.get("comment", 0)
    likes, shares = counts.get("like", 0), counts.get("share", 0)
    return Figures(
        views=views,
        likes=likes,
        comments=comments,
        shares=shares,
        follows=counts.get("follow", 0),
        engagement_rate=rate(likes + comments + shares, views),
        comments_per_1000_views=rate(comments * 1000, views),
    )


def relative_change(during: float | None, before: float | None) -> float | None:
    if during is None or before is None or before == 0:
        return None
    return (during - before) / abs(before)
