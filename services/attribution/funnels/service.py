"""Funnel queries: check the range, plan the request, ask a source, shape the answer.

Where the step counts come from is a :class:`~.source.FunnelSource`: the service's own
database evaluated by the exact engine (:class:`~.source.SqlFunnelSource`) or any other
store answering the same request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from services.attribution.funnels.engine import FunnelResult, StepStat
from services.attribution.funnels.planner import FunnelPlan, plan_funnel
from services.attribution.funnels.schemas import (
    FunnelBreakdownOut,
    FunnelOut,
    FunnelQuery,
    FunnelStepOut,
)
from services.attribution.funnels.source import FunnelSource
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
    check_range(query, max_report_days)
    plan = plan_funnel(tenant_id, query)
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
