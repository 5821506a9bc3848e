"""Report query parameters: typed models FastAPI fills from the query string.

Each field checks its own value and says what is allowed; pydantic reports every bad field at
once, and the reports' route turns them into one 422 problem+json (``errors: [{loc, msg}]``,
with every reason in ``detail`` too). What depends on the clock, the service's settings or
the tenant (the default range and model, the longest range) is settled by ``scope``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from services.attribution.credit.engine import MODELS, Model
from services.attribution.reports.buckets import INTERVALS, Interval
from shared.errors import UnprocessableEntity
from shared.schemas import ID_PATTERN
from shared.vocabulary import CONTENT_KINDS, ContentKind, Platform

# The ads and contents reports also take the data-driven models, computed for the range.
DataDriven = Literal["markov", "shapley"]
DATA_DRIVEN: tuple[DataDriven, ...] = get_args(DataDriven)
REPORT_MODELS: tuple[str, ...] = (*MODELS, *DATA_DRIVEN)
Output = Literal["json", "csv"]
OUTPUTS: tuple[Output, ...] = get_args(Output)
Table = Literal["rows", "by_format"]
TABLES: tuple[Table, ...] = get_args(Table)
Metric = Literal["impressions", "views", "clicks", "orders", "gmv"]
METRICS: tuple[Metric, ...] = get_args(Metric)
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
DEFAULT_DAYS = 30
MIN_YEAR, MAX_YEAR = 1900, 9000  # keeps local-time arithmetic clear of datetime's limits
EXAMPLES = "e.g. 2026-03-01T00:00:00+08:00 or 2026-03-01T00:00:00Z"
_ID = re.compile(ID_PATTERN)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# "+08:00" arrives as " 08:00" when a client forgets to percent-encode the plus sign.
_SPACED_OFFSET = re.compile(r"^(.*T[0-9:.]+) ([0-9]{2}(:?[0-9]{2})?)$")
# What to send when a required parameter is missing.
_MISSING = {"metric": f"is required; use one of: {', '.join(METRICS)}"}


def invalid_query(problems: Iterable[tuple[str, str]]) -> UnprocessableEntity:
    """One 422 naming every (parameter, reason), in ``errors`` and in ``detail``."""
    errors = [{"loc": ["query", name], "field": name, "msg": msg} for name, msg in problems]
    summary = "; ".join(f"{error['field']}: {error['msg']}" for error in errors)
    return UnprocessableEntity(f"Invalid report query: {summary}.", errors=errors)


def reason(error: Mapping[str, Any]) -> tuple[str, str]:
    """A pydantic error of a report query as (parameter, reason)."""
    name = str(error["loc"][-1])
    if error["type"] == "missing":
        return name, _MISSING.get(name, "is required")
    return name, str(error["msg"]).removeprefix("Value error, ")


def _instant(value: object) -> object:
    """An ISO-8601 instant with an offset, from 1900 to 8999, as UTC."""
    if not isinstance(value, str):
        return value  # left to the datetime type
    text = value.strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO-8601 timestamp; send one with an offset, {EXAMPLES}"
        ) from None
    if parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no timezone offset; add one, {EXAMPLES}")
    if not MIN_YEAR <= parsed.year < MAX_YEAR:
        raise ValueError(f"{value!r} is out of range; use a year from {MIN_YEAR} to {MAX_YEAR - 1}")
    return parsed.astimezone(dt.UTC)


def _one_of(allowed: tuple[str, ...]) -> BeforeValidator:
    def check(value: object) -> object:
        if value is not None and value not in allowed:
            raise ValueError(f"{value!r} is not allowed; use one of: {', '.join(allowed)}")
        return value

    return BeforeValidator(check)


def _id(value: object) -> object:
    if isinstance(value, str) and not _ID.fullmatch(value):
        raise ValueError("must be 1–128 characters from letters, digits and . _ : -")
    return value


def _flag(value: object) -> object:
    if not isinstance(value, str):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not allowed; use true or false")


Instant = Annotated[dt.datetime | None, BeforeValidator(_instant)]
Id = Annotated[Annotated[str, StringConstraints(pattern=ID_PATTERN)] | None, BeforeValidator(_id)]


class Range(BaseModel):
    """A report's range: ``from`` inclusive, ``to`` exclusive; ``scope`` settles the defaults."""

    from_: Instant = Field(
        None,
        alias="from",
        description="Start, inclusive: ISO-8601 with an offset (default: `to` − 30 days)",
        examples=["2026-03-01T00:00:00+08:00"],
    )
    to: Instant = Field(None, description="End, exclusive: ISO-8601 with an offset (default: now)")


class ReportQuery(Range):
    """What every report takes."""

    model: Annotated[Model | DataDriven | None, _one_of(REPORT_MODELS)] = Field(
        None,
        description="Attribution model (default: the tenant's); markov or shapley split each "
        "order's revenue over its own touches by their data-driven weights for the range",
    )
    format: Annotated[Output | None, _one_of(OUTPUTS)] = Field(
        None, description="json (default) or csv; `Accept: text/csv` also selects CSV"
    )
    include_inactive: Annotated[bool, BeforeValidator(_flag)] = Field(
        False, description="true adds every catalog ad/content without activity, with zeros"
    )


class AdsQuery(ReportQuery):
    campaign_id: Id = Field(None, description="Only this campaign's ads")
    table: Annotated[Table, _one_of(TABLES)] = Field(
        "rows", description="CSV only: rows (default) or by_format"
    )


class ContentsQuery(ReportQuery):
    kind: Annotated[ContentKind | None, _one_of(CONTENT_KINDS)] = Field(
        None, description="video or live"
    )
    platform: Annotated[Platform | None, _one_of(PLATFORMS)] = Field(
        None, description="The account's platform"
    )
    account_id: Id = Field(None, description="Only this account's contents")


class TimeseriesQuery(ReportQuery):
    model: Annotated[Model | None, _one_of(MODELS)] = Field(
        None, description="Attribution model (default: the tenant's); rule-based models only"
    )
    metric: Annotated[Metric, _one_of(METRICS)] = Field(description="The metric")
    interval: Annotated[Interval, _one_of(INTERVALS)] = Field(
        "day", description="hour or day (default)"
    )
    content_id: Id = Field(None, description="Only this content")
    ad_id: Id = Field(None, description="Only this ad")


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report covers: ``[start, end)`` in UTC, under one model."""

    start: dt.datetime
    end: dt.datetime
    model: str
    include_inactive: bool


def scope(query: ReportQuery, *, default_model: str, max_days: int, now: dt.datetime) -> Scope:
    """The query's range and model with their defaults: ``to`` = now, ``from`` = ``to`` − 30
    days, the tenant's model; 422 when the range is empty or longer than ``max_days``."""
    end = query.to or now
    start = query.from_ or end - dt.timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise invalid_query([("from", "must be before `to` (from is inclusive, to exclusive)")])
    if end - start > dt.timedelta(days=max_days):
        days = (end - start) / dt.timedelta(days=1)
        too_long = f"the range spans {days:.6g} days; at most {max_days} days are allowed"
        raise invalid_query([("to", f"{too_long} per report")])
    return Scope(start, end, query.model or default_model, query.include_inactive)
