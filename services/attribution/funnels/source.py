"""Where a funnel is answered: :class:`FunnelSource`, and the SQL store's implementation.

A source takes a :class:`~.planner.FunnelPlan` and gives its step counts (distinct users,
conversions, median times, per breakdown value) as a :class:`~.engine.FunnelResult`, by
the semantics of :mod:`.engine`. :class:`SqlFunnelSource` reads the users' rows from the
service's own database (:mod:`.reader`) and evaluates them with the exact engine, one user
at a time, so memory stays bounded by a chunk of users. An analytic store can answer the
same request by implementing the protocol; the router's ``funnel_source`` picks one.
"""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.funnels import reader
from services.attribution.funnels.engine import (
    BreakdownResult,
    FunnelAccumulator,
    FunnelResult,
    UserEvent,
    merge_split,
)
from services.attribution.funnels.modes import ModeAccumulator, ModeSpec, TrendAccumulator
from services.attribution.funnels.planner import FunnelPlan, read_plan
from services.attribution.funnels.reader import FunnelUser, StreamUser
from services.attribution.funnels.repository import FunnelRepository
from shared.db import to_epoch_us


class FunnelSource(Protocol):
    """Step counts for a funnel request, scoped to the plan's tenant."""

    async def step_counts(self, plan: FunnelPlan) -> FunnelResult:
        """One :class:`StepStat` per step of ``plan`` (and per breakdown value, ordered
        by step-1 users descending, then value), as :mod:`.engine` and :mod:`.modes`
        define them."""
        ...

    async def conversion_times(self, plan: FunnelPlan, from_step: int, to_step: int) -> list[int]:
        """Microseconds of each converted user's first conversion (:mod:`.modes`)."""
        ...

    async def user_steps(self, plan: FunnelPlan, least_level: int = 1) -> dict[str, int]:
        """User id → bit ``j`` for each step ``j`` the user counts at (users counting at
        none are left out; so may be those reaching fewer than ``least_level`` steps)."""
        ...

    async def trend_counts(
        self, plan: FunnelPlan, bounds: Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """``(entered, converted)`` per period ``[lo, hi)`` (µs) (:mod:`.modes`)."""
        ...


class StreamModeSource(ABC):
    """The modes beyond the plain funnel, evaluated over each user's whole stream of items
    (:mod:`.modes`); a subclass says where the streams are read (:meth:`item_streams`)."""

    @abstractmethod
    def item_streams(
        self, plan: FunnelPlan, least_level: int = 1
    ) -> AsyncGenerator[list[StreamUser], None]:
        """Every user's stream (:func:`.reader.group_stream_rows`), in chunks of users. The
        users who cannot reach ``least_level`` steps may be left out: those lacking an item
        of one of :meth:`~.planner.FunnelPlan.needed_steps` (unordered: matching fewer than
        ``least_level`` different steps)."""

    async def entered_counts(
        self, plan: FunnelPlan, bounds: Sequence[tuple[int, int]]
    ) -> list[int] | None:
        """Users entering each period, as :class:`TrendAccumulator` counts them, when the
        store counts them itself (then only the users able to convert are streamed)."""
        return None

    async def mode_counts(self, plan: FunnelPlan) -> FunnelResult:
        modes = ModeAccumulator(mode_spec(plan), breakdown=plan.breakdown is not None)
        await self._stream(plan, modes)
        return modes.result()

    async def conversion_times(self, plan: FunnelPlan, from_step: int, to_step: int) -> list[int]:
        acc = ModeAccumulator(mode_spec(plan, (from_step, to_step)))
        # Only a user reaching ``to_step`` has a conversion.
        await self._stream(plan, acc, to_step + 1)
        return acc.conversions

    async def user_steps(self, plan: FunnelPlan, least_level: int = 1) -> dict[str, int]:
        acc = ModeAccumulator(mode_spec(plan), levels=True)
        await self._stream(plan, acc, least_level)
        return cast(dict[str, int], acc.levels)

    async def trend_counts(
        self, plan: FunnelPlan, bounds: Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """``(entered, converted)`` per period ``[lo, hi)`` (µs) of :class:`TrendAccumulator`."""
        entered = await self.entered_counts(plan, bounds)
        acc = TrendAccumulator(mode_spec(plan), bounds)
        # Converting takes every step: with the entries counted, only such users are read.
        await self._stream(plan, acc, 1 if entered is None else len(plan.steps))
        return list(zip(acc.entered if entered is None else entered, acc.converted, strict=True))

    async def _stream(
        self, plan: FunnelPlan, acc: ModeAccumulator | TrendAccumulator, least_level: int = 1
    ) -> None:
        """Every user's whole stream through ``acc`` (those able to reach ``least_level``
        at least)."""
        with _no_cycle_collection():
            async with aclosing(self.item_streams(plan, least_level)) as chunks:
                async for users in chunks:
                    acc.add_users(users)


class SqlFunnelSource(StreamModeSource):
    """The service's database selects, matches and groups the rows; the engine counts."""

    def __init__(self, session: AsyncSession) -> None:
        self._repository = FunnelRepository(session)

    async def step_counts(self, plan: FunnelPlan) -> FunnelResult:
        if not plan.plain:
            return await self.mode_counts(plan)
        read = read_plan(plan, self._repository.dialect)
        funnel = partial(
            FunnelAccumulator,
            len(plan.steps),
            plan.window_us,
            to_epoch_us(plan.start),
            to_epoch_us(plan.end),
        )
        users = reader.stream_users(self._repository, plan, read)
        if plan.breakdown is not None and plan.first_is_order:
            # An order has as many breakdown values as it has last-touch credits; the engine
            # takes one value per event, so each value's funnel is run on its own.
            values = await self._repository.order_breakdown_values(plan)
            multi = _MultiValueBreakdown(funnel, values)
            await feed(users, multi.add_user)
            return multi.result()
        acc = funnel(breakdown=plan.breakdown is not None)
        await feed(users, lambda user: acc.add_split(*user))
        return acc.result()

    def item_streams(
        self, plan: FunnelPlan, least_level: int = 1
    ) -> AsyncGenerator[list[StreamUser], None]:
        """Every user's stream (``least_level`` is not used: the database reads them all)."""
        read = read_plan(plan, self._repository.dialect)
        return reader.stream_users_items(self._repository, plan, read)


def mode_spec(plan: FunnelPlan, convert: tuple[int, int] | None = None) -> ModeSpec:
    return ModeSpec(
        n_steps=len(plan.steps),
        window_us=plan.window_us,
        from_us=to_epoch_us(plan.start),
        to_us=to_epoch_us(plan.end),
        order=plan.order,
        exclusions=tuple((x.from_step, x.to_step) for x in plan.exclusions),
        convert=convert,
        optional=plan.optional_mask,
        hold=bool(plan.hold),
        attribution=plan.attribution,
        attribution_step=plan.attribution_step,
    )


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
        new_accumulator: Callable[[], FunnelAccumulator],
        order_values: Mapping[str, frozenset[str]],
    ) -> None:
        self._new_accumulator = new_accumulator
        self._overall = new_accumulator()
        self._from_us = self._overall.from_us
        self._to_us = self._overall.to_us
        self._values = order_values
        self._by_value: dict[str, FunnelAccumulator] = {}

    def _accumulator(self, value: str) -> FunnelAccumulator:
        acc = self._by_value.get(value)
        if acc is None:
            acc = self._by_value[value] = self._new_accumulator()
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
        return FunnelResult.of(
            self._overall.result().steps,
            (BreakdownResult(value, acc.result().steps) for value, acc in self._by_value.items()),
        )
