"""The per-user rows of the database → :class:`FunnelUser`: decoded, merged, sorted.

The database hands over each user as a few unordered lists (see ``queries._per_user``):
PostgreSQL as big-endian bigints in a ``bytea`` and arrays, SQLite as JSON arrays. The
reader decodes them, merges the order rows SQLite reads apart, replaces the raw values of a
read-model breakdown by the values, and sorts each user's lists, as
``FunnelAccumulator.add_split`` takes them. :func:`stream_users` hands users on in chunks.
"""

from __future__ import annotations

import itertools
import sys
from array import array
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import NamedTuple, cast

import orjson

from services.attribution.funnels.engine import MASK_BITS
from services.attribution.funnels.modes import NO_HELD, Held, StreamItem
from services.attribution.funnels.planner import CONTENT_MARK, FunnelPlan, ReadPlan
from services.attribution.funnels.queries import (
    OrderRowColumns,
    RawInts,
    RawValues,
    StreamRowColumns,
    UserRowColumns,
)
from services.attribution.funnels.repository import FunnelRepository

Values = list[str | None]


class FunnelUser(NamedTuple):
    """One user, as :meth:`FunnelAccumulator.add_split` takes them (all lists ascending)."""

    starts: list[int]  # times of in-range rows matching step 1 only
    later: list[int]  # t << MASK_BITS | mask of rows matching some later step
    start_values: Values | None  # breakdown values, aligned (breakdown only)
    later_values: Values | None


class _UserOrders(NamedTuple):
    """A user's order rows (read apart), merged into their per-user row."""

    starts: list[int]
    later: list[int]
    start_values: Values
    later_values: Values


def orders_by_user(rows: Sequence[OrderRowColumns]) -> dict[str, _UserOrders]:
    out: dict[str, _UserOrders] = {}
    for user, t, mask, value, start in rows:
        o = out.get(user)
        if o is None:
            o = out[user] = _UserOrders([], [], [], [])
        if mask > 1:
            o.later.append(t << MASK_BITS | mask)
            o.later_values.append(value)
        elif start:
            o.starts.append(t)
            o.start_values.append(value)
    return out


def int_list(data: bytes) -> list[int]:
    """PostgreSQL's bigints concatenated as 8-byte big-endian ``bytea`` → the numbers."""
    numbers = array("q")
    numbers.frombytes(data)
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers.tolist()


def _translator(
    breakdown: str | None, values: dict[str, str] | None
) -> Callable[[Values], Values] | None:
    """Rows' raw breakdown values (content ids, see ``queries``) → the read-model values."""
    if values is None:
        return None
    find = values.get
    if breakdown == "platform":
        mark = CONTENT_MARK

        def platform(raw: Values) -> Values:
            return [v if v is None or v[0] != mark else find(v[1:]) for v in raw]

        return platform

    def by_content(raw: Values) -> Values:
        return [None if v is None else find(v) for v in raw]

    return by_content


def _sorted_pairs(keys: list[int], values: Values) -> tuple[list[int], Values]:
    """``keys`` ascending, ``values`` reordered alike."""
    ordered = sorted(keys)
    if ordered == keys:  # rows often come in time order already
        return keys, values
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], [values[i] for i in order]


class UserDecoder:
    """Per-user rows → :class:`FunnelUser`, with the order rows read apart merged in."""

    def __init__(
        self,
        plan: FunnelPlan,
        orders: dict[str, _UserOrders],
        content_values: dict[str, str] | None,
    ) -> None:
        self.breakdown = plan.breakdown is not None
        self.orders = orders
        self.translate = _translator(plan.breakdown, content_values)

    def users(self, chunk: Sequence[UserRowColumns]) -> list[FunnelUser]:
        return [self.user(*row) for row in chunk]

    def leftover(self) -> list[FunnelUser]:
        """Users with order rows but no event row (their orders were read apart)."""
        return [self.user(user_id, None, None, None, None) for user_id in list(self.orders)]

    @staticmethod
    def _ints(raw: RawInts) -> list[int]:
        if raw is None:
            return []
        return int_list(raw) if isinstance(raw, bytes) else orjson.loads(raw)

    @staticmethod
    def _values(raw: RawValues) -> Values:
        if raw is None:
            return []
        return orjson.loads(raw) if isinstance(raw, str) else raw

    def user(
        self,
        user_id: str,
        starts_raw: RawInts,
        later_raw: RawInts,
        start_values_raw: RawValues,
        later_values_raw: RawValues,
    ) -> FunnelUser:
        starts = self._ints(starts_raw)
        later = self._ints(later_raw)
        orders = self.orders.pop(user_id, None) if self.orders else None
        if orders is not None:
            starts += orders.starts
            later += orders.later
        if not self.breakdown:
            starts.sort()
            later.sort()
            return FunnelUser(starts, later, None, None)
        start_values = self._values(start_values_raw)
        later_values = self._values(later_values_raw)
        if self.translate is not None:
            start_values = self.translate(start_values)
            later_values = self.translate(later_values)
        if orders is not None:
            start_values = start_values + orders.start_values
            later_values = later_values + orders.later_values
        starts, start_values = _sorted_pairs(starts, start_values)
        later, later_values = _sorted_pairs(later, later_values)
        return FunnelUser(starts, later, start_values, later_values)


async def stream_users(
    repository: FunnelRepository, plan: FunnelPlan, read: ReadPlan
) -> AsyncGenerator[list[FunnelUser], None]:
    """Every user who can start a chain, in chunks of users."""
    await repository.prepare(read)
    orders = orders_by_user(await repository.order_rows(plan, read)) if read.orders_apart else {}
    values = await repository.content_values(plan) if read.lookup_contents else None
    decoder = UserDecoder(plan, orders, values)
    async with aclosing(repository.user_rows(plan, read)) as chunks:
        async for chunk in chunks:
            yield decoder.users(chunk)
    if orders:
        yield decoder.leftover()


#: One user's stream: ``(user_id, items ordered by time then id)``.
StreamUser = tuple[str, list[StreamItem]]
_NO_VALUES: frozenset[str] = frozenset()


async def stream_users_items(
    repository: FunnelRepository, plan: FunnelPlan, read: ReadPlan
) -> AsyncGenerator[list[StreamUser], None]:
    """Every user's stream (see ``queries.stream_rows_statement``), in chunks of users."""
    await repository.prepare(read)
    lookups = await order_lookups(repository, plan)
    rows = repository.stream_rows(plan, read)
    async with aclosing(rows), aclosing(group_stream_rows(rows, plan, lookups)) as users:
        async for chunk in users:
            yield chunk


class OrderLookups(NamedTuple):
    """An order's breakdown values and held values, by its id (an order has several: one
    per line or last-touch credit), from the attribution database."""

    values: dict[str, frozenset[str]]
    held: list[dict[str, frozenset[str]]]  # one per held dimension


async def order_lookups(repository: FunnelRepository, plan: FunnelPlan) -> OrderLookups:
    if plan.breakdown is not None and plan.attribution != "first_step":
        values = await repository.order_values(plan, plan.breakdown)
    else:
        values = await repository.order_breakdown_values(plan)
    return OrderLookups(values, [await repository.order_values(plan, key) for key in plan.hold])


class StreamDecoder:
    """One row of a user's stream → the :data:`StreamItem` the modes take."""

    def __init__(self, plan: FunnelPlan, lookups: OrderLookups) -> None:
        self._n = len(plan.steps)
        self._steps = (1 << self._n) - 1
        self._hold = bool(plan.hold)
        self._order_values, self._order_held = lookups

    def item(
        self, t: int, mask: int, value: str | None, is_order: int, held: Sequence[str | None]
    ) -> StreamItem:
        """``value`` is an event's breakdown value or an order's id, ``held`` an event's
        values of the held dimensions (an order's are looked up by its id)."""
        return (
            t,
            mask & self._steps,
            mask >> self._n,
            self.values(value, is_order),
            self.held(value, is_order, held),
        )

    def values(self, value: str | None, is_order: int) -> frozenset[str]:
        """An item's breakdown values."""
        if is_order:
            return self._order_values.get(value or "", _NO_VALUES)
        return _NO_VALUES if value is None else frozenset((value,))

    def held(self, value: str | None, is_order: int, held: Sequence[str | None]) -> frozenset[Held]:
        """An item's tuples of held values."""
        if not self._hold:
            return NO_HELD
        if is_order:
            return frozenset(
                itertools.product(
                    *(sorted(found.get(value or "", ())) for found in self._order_held)
                )
            )
        if None in held:
            return NO_HELD
        return frozenset((cast(Held, tuple(held)),))


async def group_stream_rows(
    chunks: AsyncIterator[Sequence[StreamRowColumns]],
    plan: FunnelPlan,
    lookups: OrderLookups,
) -> AsyncGenerator[list[StreamUser], None]:
    """Rows ``(user_id, t, item_id, mask, value, is_order, *held)`` that come by user →
    each user's stream, in chunks of users.

    Ties in time are ordered by id, then events before orders, by Python's string order,
    so that both databases (whatever their collation) give the same stream.
    """
    decoder = StreamDecoder(plan, lookups)
    pending: list[tuple[int, str, int, StreamItem]] = []
    user: str | None = None

    def finish() -> StreamUser:
        pending.sort(key=lambda row: (row[0], row[1], row[2]))
        return cast(str, user), [item for *_, item in pending]

    async for chunk in chunks:
        out: list[StreamUser] = []
        for user_id, t, item_id, mask, value, is_order, *held in chunk:
            if user_id != user:
                if pending:
                    out.append(finish())
                    pending = []
                user = user_id
            pending.append((t, item_id, is_order, decoder.item(t, mask, value, is_order, held)))
        if out:
            yield out
    if pending:
        yield [finish()]
