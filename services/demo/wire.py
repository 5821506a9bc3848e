"""How instants and money are written in request bodies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

CENT = Decimal("0.01")
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_EIGHT_HOURS_US = 8 * 3_600 * 1_000_000


def iso(t_us: int, offset_hours: int = 0) -> str:
    """ISO-8601 with an offset: ``Z`` for UTC, ``+08:00`` for a sender on China time."""
    # Naive arithmetic and a literal suffix: several times faster than aware datetimes.
    if offset_hours == 8:
        local = _NAIVE_EPOCH + dt.timedelta(microseconds=t_us + _EIGHT_HOURS_US)
        return local.isoformat() + "+08:00"
    return (_NAIVE_EPOCH + dt.timedelta(microseconds=t_us)).isoformat() + "Z"


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))
