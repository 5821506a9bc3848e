"""Report query parameters: parsed and checked by hand so that every problem is reported at
once, each with what is allowed (422 problem+json with ``errors: [{loc, msg}]``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.attribution.credit.engine import MODELS
from shared.errors import UnprocessableEntity

Output = Literal["json", "csv"]
OUTPUTS: tuple[Output, ...] = ("json", "csv")
DEFAULT_DAYS = 30
MIN_YEAR, MAX_YEAR = 1900, 9000  # keeps local-time arithmetic clear of datetime's limits
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# "+08:00" arrives as " 08:00" when a client forgets to percent-encode the plus sign.
_SPACED_OFFSET = re.compile(r"^(.*T[0-9:.]+) ([0-9]{2}(:?[0-9]{2})?)$")


class QueryErrors:
    """Collects problems with query parameters; ``check()`` raises them all as one 422."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, message: str) -> None:
        self.items.append({"loc": ["query", name], "msg": message})

    def check(self) -> None:
        if self.items:
            summary = "; ".join(f"{item['loc'][-1]}: {item['msg']}" for item in self.items)
            raise UnprocessableEntity(f"Invalid report query: {summary}.", errors=self.items)


def parse_instant(name: str, value: str | None, errors: QueryErrors) -> dt.datetime | None:
    if value is None:
        return None
    text = value.strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        errors.add(
            name,
            f"{value!r} is not an ISO-8601 timestamp; send one with an offset, "
            "e.g. 2026-03-01T00:00:00+08:00 or 2026-03-01T00:00:00Z",
        )
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errors.add(
            name,
            f"{value!r} has no timezone offset; add one, "
            "e.g. 2026-03-01T00:00:00+08:00 or 2026-03-01T00:00:00Z",
        )
        return None
    if not MIN_YEAR <= parsed.year < MAX_YEAR:
        errors.add(name, f"{value!r} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR - 1}")
        return None
    return parsed.astimezone(dt.UTC)


def parse_choice(
    name: str, value: str | None, allowed: Sequence[str], errors: QueryErrors
) -> str | None:
    if value is None or value in allowed:
        return value
    errors.add(name, f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
    return None


def parse_id(name: str, value: str | None, errors: QueryErrors) -> str | None:
    if value is None or ID_RE.fullmatch(value):
        return value
    errors.add(name, "must be 1–128 characters from letters, digits and . _ : -")
    return None


def parse_bool(name: str, value: str | None, errors: QueryErrors) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered not in _FALSE:
        errors.add(name, f"{value!r} is not allowed; use true or false")
    return False


@dataclass(frozen=True, slots=True)
class Common:
    """What every report takes: the range, the model, the output format."""

    start: dt.datetime
    end: dt.datetime
    model: str
    output: Output
    include_inactive: bool


def parse_common(
    errors: QueryErrors,
    *,
    from_: str | None,
    to: str | None,
    model: str | None,
    output: str | None,
    include_inactive: str | None,
    accept: str | None,
    default_model: str,
    max_days: int,
    now: dt.datetime,
) -> Common:
    """Parse the shared parameters into ``errors``; the caller calls ``errors.check()``.

    Defaults: ``to`` = now, ``from`` = ``to`` − 30 days; the model is the tenant's default;
    CSV when ``format=csv``, or when ``format`` is absent and ``Accept`` asks for text/csv.
    """
    start = parse_instant("from", from_, errors)
    end = parse_instant("to", to, errors)
    chosen_model = parse_choice("model", model, MODELS, errors) or default_model
    chosen_output = parse_choice("format", output, OUTPUTS, errors)
    inactive = parse_bool("include_inactive", include_inactive, errors)
    if chosen_output is None:
        chosen_output = "csv" if output is None and _wants_csv(accept) else "json"
    if (from_ is not None and start is None) or (to is not None and end is None):
        return Common(now, now, chosen_model, "json", inactive)  # errors already recorded
    end = end or now
    start = start or end - dt.timedelta(days=DEFAULT_DAYS)
    if start >= end:
        errors.add("from", "must be before `to` (from is inclusive, to exclusive)")
    elif end - start > dt.timedelta(days=max_days):
        days = (end - start) / dt.timedelta(days=1)
        errors.add(
            "to",
            f"the range spans {days:.6g} days; at most {max_days} days are allowed per report",
        )
    return Common(start, end, chosen_model, "csv" if chosen_output == "csv" else "json", inactive)


def _wants_csv(accept: str | None) -> bool:
    if not accept:
        return False
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in types and (
        "application/json" not in types or types.index("text/csv") < types.index("application/json")
    )
