"""Funnel queries: validate the range, plan the query, stream its rows into the engine.

The database does the selecting, filtering, step matching, grouping by user and ordering by
time (:mod:`.repository`); the exact ordered-funnel semantics are the pure engine's
(:mod:`.engine`), fed one user at a time, so memory stays bounded by a chunk of users.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.funnels import repository
from services.attribution.funnels.engine import (
    BreakdownResult,
    FunnelAccumulator,
    FunnelResult,
    StepStat,
    UserEvent,
    merge_split,
)
from services.attribution.funnels.repository import FunnelPlan, FunnelUser, StepPlan
from services.attribution.funnels.schemas import (
    FunnelBreakdownOut,
    FunnelOut,
    FunnelQuery,
    FunnelStepOut,
)
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


def make_plan(tenant_id: str, query: FunnelQuery) -> FunnelPlan:
    return FunnelPlan(
        tenant_id=tenant_id,
        steps=tuple(
            StepPlan(step.type, step.filters.given() if step.filters else {})
            for step in query.steps
        ),
        filters=query.filters.given() if query.filters else {},
        start=query.from_,
        end=query.to,
        until=query.to + dt.timedelta(seconds=query.window_seconds),
        breakdown=query.breakdown,
    )


async def run_funnel(
    session: AsyncSession, tenant_id: str, query: FunnelQuery, *, max_report_days: int
) -> FunnelOut:
    check_range(query, max_report_days)
    plan = make_plan(tenant_id, query)
    n_steps = len(plan.steps)
    window_us = query.window_seconds * 1_000_000
    from_us = to_epoch_us(plan.start)
    to_us = to_epoch_us(plan.end)
    if plan.breakdown is not None and plan.first_is_order:
        # An order has as many breakdown values as it has last-touch credits; the engine
        # takes one value per event, so each value's funnel is run on its own.
        values = await repository.order_breakdown_values(session, plan)
        multi = _MultiValueBreakdown(n_steps, window_us, from_us, to_us, values)
        await feed(repository.stream_users(session, plan), multi.add_user)
        result = multi.result()
    else:
        acc = FunnelAccumulator(
            n_steps, window_us, from_us, to_us, breakdown=plan.breakdown is not None
        )
        await feed(repository.stream_users(session, plan), partial(_add_user, acc))
        result = acc.result()
    return to_out(plan, result)


def _add_user(acc: FunnelAccumulator, user: FunnelUser) -> None:
    acc.add_split(*user)


async def feed(
    chunks: AsyncGenerator[list[FunnelUser], None], add_user: Callable[[FunnelUser], None]
) -> None:
    """Hand each user to ``add_user`` (the stream is always closed)."""
    with _no_cycle_collection():
        async with aclosing(chunks):
            async for users in chunks:
                for user in users:
                    add_user(user)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cycle collector while users are evaluated.

    Each user allocates a few lists and tuples, freed by reference counting as soon as the
    user is done; the collector's passes over the process's objects, triggered every few
    hundred allocations, found nothing to free and cost about a third of a funnel's CPU
    time. Resumed afterwards (unless something else had paused it), whatever happens.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _MultiValueBreakdown:
    """Breakdown when step 1 is ``order``: each value's funnel runs on its own accumulator.

    For value ``v`` a user's rows go in with the step-1 bit kept only on orders having
    ``v``, which is the definition of v's funnel (later steps are unrestricted).
    """

    def __init__(
        self,
        n_steps: int,
        window_us: int,
        from_us: int,
        to_us: int,
        order_values: Mapping[str, frozenset[str]],
    ) -> None:
        self._args = (n_steps, window_us, from_us, to_us)
        self._from_us = from_us
        self._to_us = to_us
        self._values = order_values
        self._overall = FunnelAccumulator(n_steps, window_us, from_us, to_us)
        self._by_value: dict[str, FunnelAccumulator] = {}

    def _accumulator(self, value: str) -> FunnelAccumulator:
        acc = self._by_value.get(value)
        if acc is None:
            acc = self._by_value[value] = FunnelAccumulator(*self._args)
        return acc

    def add_user(self, user: FunnelUser) -> None:
        """``user``'s values are the order id of each row (None for events)."""
        events = merge_split(*user)
        self._overall.add_user([(t, mask, None) for t, mask, _ in events])
        values, lo, hi = self._values, self._from_us, self._to_us
        starts: set[str] = set()
        for t, mask, order_id in events:
            if mask & 1 and order_id is not None and lo <= t < hi:
                starts.update(values.get(order_id, ()))
        for value in starts:
            # Step 1 stays possible only on orders having this value (events never match
            # step 1 here: it is `order`).
            restricted: list[UserEvent] = [
                (t, mask if value in values.get(order_id or "", ()) else mask & ~1, None)
                for t, mask, order_id in events
            ]
            self._accumulator(value).add_user(restricted)

    def result(self) -> FunnelResult:
        breakdown = [
            BreakdownResult(value, acc.result().steps) for value, acc in self._by_value.items()
        ]
        breakdown.sort(key=lambda b: (-b.steps[0].users, b.value))
        return FunnelResult(self._overall.result().steps, breakdown)


def _steps_out(plan: FunnelPlan, stats: Sequence[StepStat]) -> list[FunnelStepOut]:
    return [
        FunnelStepOut(
            type=step.type,
            users=stat.users,
            conversion_from_start=stat.conversion_from_start,
            conversion_from_previous=stat.conversion_from_previous,
            median_seconds_from_previous=stat.median_seconds_from_previous,
        )
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
