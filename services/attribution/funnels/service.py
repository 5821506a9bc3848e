"""Funnel queries: check the range, plan the request, ask a source, shape the answer.

Where the step counts come from is a :class:`~.source.FunnelSource`: the service's own
database evaluated by the exact engine (:class:`~.source.SqlFunnelSource`) or any other
store answering the same request.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from services.attribution.funnels.engine import FunnelResult, StepStat
from services.attribution.funnels.periods import periods
from services.attribution.funnels.planner import FunnelPlan, plan_funnel
from services.attribution.funnels.schemas import (
    MAX_BINS,
    FunnelBreakdownOut,
    FunnelOut,
    FunnelQuery,
    FunnelStepOut,
    FunnelUsersOut,
    FunnelUsersQuery,
    TimeBinOut,
    TimeToConvertOut,
    TimeToConvertQuery,
    TrendPointOut,
    TrendsOut,
    TrendsQuery,
)
from services.attribution.funnels.source import FunnelSource
from shared.db import to_epoch_us
from shared.errors import UnprocessableEntity
from shared.schemas import format_utc


def check_range(query: FunnelQuery, max_report_days: int) -> None:
    """The range may span at most ``max_report_days`` days (``from < to`` is the schema's)."""
    if query.to - query.from_ > dt.timedelta(days=max_report_days):
        days = (query.to - query.from_) / dt.timedelta(days=1)
        message = (
            f"the range from {format_utc(query.from_)} to {format_utc(query.to)} spans "
            f"{days:g} days; at most {max_report_days} days are allowed"
        )
        raise UnprocessableEntity(
            f"Invalid funnel query: {message}.", errors=[{"loc": ["body", "to"], "msg": message}]
        )


async def run_funnel(
    source: FunnelSource, tenant_id: str, query: FunnelQuery, *, max_report_days: int
) -> FunnelOut:
    plan = _checked_plan(tenant_id, query, max_report_days)
    return to_out(plan, await source.step_counts(plan))


def _steps_out(plan: FunnelPlan, stats: Sequence[StepStat]) -> list[FunnelStepOut]:
    return [
        FunnelStepOut(type=step.type, **dataclasses.asdict(stat))
        for step, stat in zip(plan.steps, stats, strict=True)
    ]


def to_out(plan: FunnelPlan, result: FunnelResult) -> FunnelOut:
    return FunnelOut(
        steps=_steps_out(plan, result.steps),
        breakdown=[
            FunnelBreakdownOut(value=b.value, steps=_steps_out(plan, b.steps))
            for b in result.breakdown
        ],
    )


def _refuse(field: list[str | int], message: str) -> UnprocessableEntity:
    return UnprocessableEntity(
        f"Invalid funnel query: {message}.",
        errors=[
            {
                "loc": ["body", *field],
                "field": ".".join(str(part) for part in field),
                "msg": message,
            }
        ],
    )


def check_modes(query: FunnelQuery) -> None:
    """What the schema alone cannot check: the modes against the steps and each other."""
    last = len(query.steps) - 1
    for end in (0, last):
        if query.steps[end].optional:
            raise _refuse(
                ["steps", end, "optional"],
                f"steps.{end} is the {'first' if end == 0 else 'last'} step, which a chain "
                "cannot skip: only steps between them may be optional",
            )
    optional = [k for k, step in enumerate(query.steps) if step.optional]
    if optional and query.order == "unordered":
        raise _refuse(
            ["steps", optional[0], "optional"],
            "optional steps need steps in order: use order `ordered` or `strict`, or send no "
            "optional step with an `unordered` funnel",
        )
    for i, exclusion in enumerate(query.exclusions):
        if exclusion.to_step > last:
            raise _refuse(
                ["exclusions", i, "to_step"],
                f"exclusions.{i}.to_step is {exclusion.to_step}, but the steps are numbered "
                f"0 to {last}",
            )
        for side, at in (("from_step", exclusion.from_step), ("to_step", exclusion.to_step)):
            if query.steps[at].optional:
                raise _refuse(
                    ["exclusions", i, side],
                    f"exclusions.{i}.{side} is step {at}, which is optional: an exclusion "
                    "lies between two required steps",
                )
    if query.exclusions and query.order == "unordered":
        raise _refuse(
            ["exclusions"],
            "exclusions need steps in order: use order `ordered` or `strict`, or send no "
            "exclusions with an `unordered` funnel",
        )
    _check_holds(query)
    _check_attribution(query)


def _check_holds(query: FunnelQuery) -> None:
    """A held dimension with two different filter values on two steps holds no chain."""
    given = query.filters.given() if query.filters else {}
    for key in query.hold_constant:
        wanted: dict[str, int] = {}
        for k, step in enumerate(query.steps):
            own = step.filters.given() if step.filters else {}
            for value in {v for v in (given.get(key), own.get(key)) if v is not None}:
                wanted.setdefault(value, k)
        if len(wanted) > 1:
            (a, first), (b, second) = sorted(wanted.items(), key=lambda kv: kv[1])[:2]
            raise _refuse(
                ["hold_constant"],
                f"hold_constant holds {key}, but step {first} asks for {key} {a} and step "
                f"{second} for {key} {b}: no chain can keep one value; drop the hold or one "
                "of the filters",
            )


def _check_attribution(query: FunnelQuery) -> None:
    attribution, step, last = query.breakdown_attribution, query.breakdown_step, len(query.steps)
    if attribution != "first_step" and query.breakdown is None:
        raise _refuse(
            ["breakdown_attribution"],
            f"breakdown_attribution `{attribution}` needs a `breakdown` to attribute",
        )
    if attribution in ("last_step", "step") and query.order == "unordered":
        raise _refuse(
            ["breakdown_attribution"],
            f"an `unordered` funnel has no {attribution.replace('_', ' ')} to attribute: use "
            "`first_step` or `all_steps`, or order `ordered` or `strict`",
        )
    if attribution != "step":
        if step is not None:
            raise _refuse(
                ["breakdown_step"],
                "breakdown_step goes with breakdown_attribution `step`: send both, or neither",
            )
        return
    if step is None:
        raise _refuse(
            ["breakdown_step"],
            "breakdown_attribution `step` needs breakdown_step, the 0-based step whose value "
            "attributes the user",
        )
    if step >= last:
        raise _refuse(
            ["breakdown_step"],
            f"breakdown_step is {step}, but the steps are numbered 0 to {last - 1}",
        )
    if query.steps[step].optional:
        raise _refuse(
            ["breakdown_step"],
            f"breakdown_step is step {step}, which is optional: attribute by a required step",
        )


def _checked_plan(tenant_id: str, query: FunnelQuery, max_report_days: int) -> FunnelPlan:
    check_range(query, max_report_days)
    check_modes(query)
    return plan_funnel(tenant_id, query)


async def run_time_to_convert(
    source: FunnelSource, tenant_id: str, query: TimeToConvertQuery, *, max_report_days: int
) -> TimeToConvertOut:
    plan = _checked_plan(tenant_id, query, max_report_days)
    last = len(plan.steps) - 1
    to_step = last if query.to_step is None else query.to_step
    if to_step > last:
        raise _refuse(["to_step"], f"to_step is {to_step}, but the steps are numbered 0 to {last}")
    if query.from_step >= to_step:
        raise _refuse(
            ["from_step"], f"from_step ({query.from_step}) must be smaller than to_step ({to_step})"
        )
    if plan.order == "unordered":
        raise _refuse(
            ["order"],
            "an `unordered` funnel has no first and last step to time: use `ordered` or `strict`",
        )
    for field, step in (("from_step", query.from_step), ("to_step", to_step)):
        if plan.steps[step].optional:
            raise _refuse(
                [field],
                f"{field} is step {step}, which is optional: time between required steps",
            )
    times = await source.conversion_times(plan, query.from_step, to_step)
    return time_histogram(times, query.bins)


def time_histogram(times_us: list[int], bins: int | None) -> TimeToConvertOut:
    """Mean, median and ``bins`` equal-width bins (default: Sturges' rule) of the times.

    Bins are whole microseconds wide, ``[min + i·w, min + (i + 1)·w)``, with
    ``w = (max − min) // bins + 1`` so that the last bin holds the largest time.
    """
    if not times_us:
        return TimeToConvertOut(users=0, average_seconds=None, median_seconds=None, bins=[])
    ordered = sorted(times_us)
    count = len(ordered)
    if bins is None:
        bins = min(MAX_BINS, math.ceil(math.log2(count)) + 1)
    low, high = ordered[0], ordered[-1]
    width = (high - low) // bins + 1
    counts = [0] * bins
    for value in ordered:
        counts[(value - low) // width] += 1
    mid = count // 2
    median = ordered[mid] if count % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return TimeToConvertOut(
        users=count,
        average_seconds=sum(ordered) / count / 1_000_000,
        median_seconds=median / 1_000_000,
        bins=[
            TimeBinOut(
                from_seconds=(low + i * width) / 1_000_000,
                to_seconds=(low + (i + 1) * width) / 1_000_000,
                users=counts[i],
            )
            for i in range(bins)
        ],
    )


async def run_funnel_users(
    source: FunnelSource, tenant_id: str, query: FunnelUsersQuery, *, max_report_days: int
) -> FunnelUsersOut:
    plan = _checked_plan(tenant_id, query, max_report_days)
    last = len(plan.steps) - 1
    if query.step > last:
        raise _refuse(["step"], f"step is {query.step}, but the steps are numbered 0 to {last}")
    if query.status == "dropped" and query.step == 0:
        raise _refuse(["step"], "no user drops before step 0: ask `dropped` at a step from 1 on")
    if plan.breakdown is not None:
        raise _refuse(
            ["breakdown"], "the users of a step are those of the whole funnel: send no breakdown"
        )
    bit = 1 << query.step
    if query.status == "reached":
        reached = await source.user_steps(plan, query.step + 1)
        chosen = [user for user, steps in reached.items() if steps & bit]
    else:
        previous = query.step - 1
        while plan.steps[previous].optional:
            previous -= 1  # the first step is never optional
        before = 1 << previous
        reached = await source.user_steps(plan, previous + 1)
        chosen = [user for user, steps in reached.items() if steps & before and not steps & bit]
    chosen.sort()
    if query.cursor is not None:
        chosen = chosen[bisect.bisect_right(chosen, query.cursor) :]
    page = chosen[: query.limit]
    more = len(chosen) > query.limit
    return FunnelUsersOut(users=page, next_cursor=page[-1] if more else None)


async def run_trends(
    source: FunnelSource,
    tenant_id: str,
    query: TrendsQuery,
    timezone: str,
    *,
    max_report_days: int,
) -> TrendsOut:
    """Entered, converted and their rate per local period of the tenant's timezone."""
    plan = _checked_plan(tenant_id, query, max_report_days)
    if plan.breakdown is not None:
        raise _refuse(["breakdown"], "a trend is of the whole funnel: send no breakdown")
    zone = ZoneInfo(timezone)
    spans = periods(plan.start, plan.end, zone, query.interval)
    bounds = [(to_epoch_us(lo), to_epoch_us(hi)) for lo, hi in spans]
    counts = await source.trend_counts(plan, bounds)
    return TrendsOut(
        timezone=timezone,
        points=[
            TrendPointOut(
                period_start=lo.astimezone(zone).isoformat(),
                entered=entered,
                converted=converted,
                conversion_rate=converted / entered if entered else None,
            )
            for (lo, _), (entered, converted) in zip(spans, counts, strict=True)
        ],
    )
