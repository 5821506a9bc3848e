"""The funnel's database reads: one filtered, grouped, streamed query does the work.

Rows that may take part in a chain are selected as ``(t, mask, value, user_id, start)``:

* ``t`` - the event's ``occurred_at`` (an order's ``paid_at``) in epoch microseconds;
* ``mask`` - bit ``k`` set when the row matches step ``k + 1`` (type and per-step filters),
  computed in SQL;
* ``value`` - the breakdown value of an event (step 1 is an event type), or the
  ``order_id`` of an order when step 1 is ``order`` with a breakdown (an order can have
  several values, looked up once by :func:`order_breakdown_values`); else NULL;
* ``user_id`` - the event's user, or the order's stitched buyer;
* ``start`` - 1 when the row can start a chain (step 1, in ``[from, to)``).

They are the tenant's events of the funnel's types (and its paid orders, when a step is
``order``) with a time in ``[from, to + window)``, passing the global filters and at least
one step's filters. Filters on the catalog read model (account, content kind, platform)
become ``content_id IN (…)`` of the matching contents; the read model is joined only for a
breakdown by one of those.

The rows are then aggregated into one row per user who can start a chain
(:func:`funnel_users_statement`), in two unordered lists: the times of the rows matching
step 1 only (most rows of a typical funnel) and the packed ``t << MASK_BITS | mask`` of the
rows matching a later step, all that :meth:`FunnelAccumulator.add_split` needs. PostgreSQL
hash-aggregates events and orders together (no sort). SQLite aggregates the events alone,
walking them in user order when an index covers them, and the few order rows are merged
per user in Python (:func:`funnel_orders_statement`). :func:`stream_users` decodes and sorts
each user's lists and hands users on in chunks, through a server-side cursor: no ORM
objects, never a whole history.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import operator
import sys
from array import array
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from functools import reduce
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    LargeBinary,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType

from services.attribution.funnels.engine import MASK_BITS
from services.attribution.models import (
    CatalogAccount,
    CatalogContent,
    Credit,
    Event,
    Order,
    OrderLine,
)
from shared.db import to_epoch_us

EVENTS = cast(Table, Event.__table__)
ORDERS = cast(Table, Order.__table__)
ORDER_LINES = cast(Table, OrderLine.__table__)
CREDITS = cast(Table, Credit.__table__)
CONTENTS = cast(Table, CatalogContent.__table__)
ACCOUNTS = cast(Table, CatalogAccount.__table__)

ORDER_STEP = "order"
#: The attribution model whose credits give an order its contents and ads (DESIGN §6).
ORDER_MODEL = "last_touch"
#: Dimensions that need the catalog read model (content → account).
CONTENT_KEYS = frozenset({"account_id", "content_kind", "platform"})
#: Marks a content id standing for its account's platform (platforms are plain words).
CONTENT_MARK = "#"

#: PostgreSQL's memory for the per-user aggregate, for the read's transaction only.
WORK_MEM = "256MB"


@dataclass(frozen=True, slots=True)
class StepPlan:
    type: str
    filters: Mapping[str, str]  # this step's own filters (the global ones come on top)


@dataclass(frozen=True, slots=True)
class FunnelPlan:
    """What the query needs: validated, merged, in UTC."""

    tenant_id: str
    steps: tuple[StepPlan, ...]
    filters: Mapping[str, str]  # global: every step
    start: dt.datetime  # first step in [start, end)
    end: dt.datetime
    until: dt.datetime  # end + window: no row at or after it can be in a chain
    breakdown: str | None

    @property
    def first_is_order(self) -> bool:
        return self.steps[0].type == ORDER_STEP

    @property
    def event_types(self) -> list[str]:
        return sorted({s.type for s in self.steps if s.type != ORDER_STEP})

    @property
    def has_orders(self) -> bool:
        return any(s.type == ORDER_STEP for s in self.steps)


# --------------------------------------------------------------------------- expressions


def _epoch_us(column: ColumnElement[Any], dialect: str, plan: FunnelPlan) -> ColumnElement[int]:
    """A UTCDateTime column as integer epoch microseconds, computed by the database."""
    if dialect == "postgresql":
        # EXTRACT(EPOCH ...) is numeric (slow); date_part() is a float8, exact here because
        # it is taken relative to the plan's start: rows lie in [start, until), so the
        # offset stays far below 2**53 microseconds and rounding gives it back exactly.
        offset = func.date_part("epoch", column - plan.start) * 1_000_000
        return sql_cast(offset, BigInteger) + to_epoch_us(plan.start)  # the cast rounds
    # SQLite stores UTCDateTime as integer epoch microseconds already.
    return type_coerce(column, BigInteger)


class _EventSource:
    """``events`` (aliased), LEFT JOINed to the read model only for a breakdown needing it.

    Filters on a dimension of the read model become ``content_id IN (…)`` of the tenant's
    matching contents, which the database evaluates once instead of joining every row.
    """

    def __init__(
        self, tenant_id: str, breakdown: str | None, name: str, *, lookup: bool = False
    ) -> None:
        e = EVENTS.alias(name)
        self.e = e
        self.tenant_id = tenant_id
        self.name = name
        joined: FromClause = e
        dims: dict[str, ColumnElement[Any]] = {
            "content_id": e.c.content_id,
            "ad_id": e.c.ad_id,
            "product_id": e.c.product_id,
        }
        if breakdown in CONTENT_KEYS and lookup:
            # ``lookup`` (SQLite): read-model values are looked up by the reader
            # (:func:`content_values`) rather than joined for every row (two index searches
            # each): the content, or for the platform the event's own platform, else its
            # content marked with CONTENT_MARK.
            content: ColumnElement[Any] = e.c.content_id
            if breakdown == "platform":
                content = func.coalesce(e.c.platform, literal(CONTENT_MARK) + e.c.content_id)
            dims[breakdown] = content
        elif breakdown in CONTENT_KEYS:
            c = CONTENTS.alias(f"{name}_content")
            joined = joined.outerjoin(c, and_(c.c.tenant_id == tenant_id, c.c.id == e.c.content_id))
            dims["account_id"] = c.c.account_id
            dims["content_kind"] = c.c.kind
            if breakdown == "platform":
                a = ACCOUNTS.alias(f"{name}_account")
                joined = joined.outerjoin(
                    a, and_(a.c.tenant_id == tenant_id, a.c.id == c.c.account_id)
                )
                dims["platform"] = func.coalesce(e.c.platform, a.c.platform)
        self.source = joined
        self.dims = dims

    def _contents(self, key: str, value: str) -> Select[tuple[str]]:
        """The tenant's contents whose ``key`` (account_id, content_kind, platform) is value."""
        c = CONTENTS.alias(f"{self.name}_fc")
        if key == "account_id":
            return select(c.c.id).where(c.c.tenant_id == self.tenant_id, c.c.account_id == value)
        if key == "content_kind":
            return select(c.c.id).where(c.c.tenant_id == self.tenant_id, c.c.kind == value)
        a = ACCOUNTS.alias(f"{self.name}_fa")
        return (
            select(c.c.id)
            .join(a, and_(a.c.tenant_id == self.tenant_id, a.c.id == c.c.account_id))
            .where(c.c.tenant_id == self.tenant_id, a.c.platform == value)
        )

    def matches(self, filters: Mapping[str, str]) -> list[ColumnElement[bool]]:
        # NULL = value is never true: an event lacking the dimension does not match.
        e = self.e
        out: list[ColumnElement[bool]] = []
        for key, value in filters.items():
            if key not in CONTENT_KEYS:
                out.append(self.dims[key] == value)
            elif key == "platform":
                # The event's own platform, else that of its content's account.
                by_account = and_(
                    e.c.platform.is_(None), e.c.content_id.in_(self._contents(key, value))
                )
                out.append(or_(e.c.platform == value, by_account))
            else:
                out.append(e.c.content_id.in_(self._contents(key, value)))
        return out


def _order_matches(
    o: FromClause, tenant_id: str, filters: Mapping[str, str]
) -> list[ColumnElement[bool]]:
    """One EXISTS per filter: some line (product) or some last-touch credit has the value."""
    conditions: list[ColumnElement[bool]] = []
    for key, value in filters.items():
        if key == "product_id":
            line = ORDER_LINES.alias("fl")
            conditions.append(
                exists().where(
                    line.c.tenant_id == tenant_id,
                    line.c.order_id == o.c.order_id,
                    line.c.product_id == value,
                )
            )
            continue
        credit, dim, source = _credit_dimension(tenant_id, key, "fc")
        conditions.append(
            exists(
                select(literal(1))
                .select_from(source)
                .where(
                    credit.c.tenant_id == tenant_id,
                    credit.c.order_id == o.c.order_id,
                    credit.c.model == ORDER_MODEL,
                    dim == value,
                )
            )
        )
    return conditions


def _credit_dimension(
    tenant_id: str, key: str, name: str
) -> tuple[FromClause, ColumnElement[Any], FromClause]:
    """(credits alias, the dimension's column, the FROM clause that provides it).

    A credit's ``platform`` is that of its touch event, else of its content's account, as
    for the event itself.
    """
    credit = CREDITS.alias(name)
    if key in ("content_id", "ad_id"):
        return credit, credit.c[key], credit
    content = CONTENTS.alias(f"{name}_content")
    on_content = and_(content.c.tenant_id == tenant_id, content.c.id == credit.c.content_id)
    if key == "account_id":
        return credit, content.c.account_id, credit.join(content, on_content)
    if key == "content_kind":
        return credit, content.c.kind, credit.join(content, on_content)
    touch = EVENTS.alias(f"{name}_touch")
    account = ACCOUNTS.alias(f"{name}_account")
    source = (
        credit.outerjoin(
            touch, and_(touch.c.tenant_id == tenant_id, touch.c.event_id == credit.c.event_id)
        )
        .outerjoin(content, on_content)
        .outerjoin(
            account, and_(account.c.tenant_id == tenant_id, account.c.id == content.c.account_id)
        )
    )
    return credit, func.coalesce(touch.c.platform, account.c.platform), source


def _bit_mask(
    steps: Sequence[StepPlan],
    type_column: ColumnElement[str] | None,
    step_matches: Mapping[int, list[ColumnElement[bool]]],
) -> ColumnElement[int]:
    """SQL for the row's step bitmask; ``step_matches[k]`` are step k's own conditions."""
    if type_column is not None and not any(step_matches.values()):
        # No per-step filter: the mask depends on the type alone.
        by_type: dict[str, int] = {}
        for k in step_matches:
            by_type[steps[k].type] = by_type.get(steps[k].type, 0) | 1 << k
        return case(by_type, value=type_column, else_=0)
    terms: list[ColumnElement[int]] = []
    for k, conditions in step_matches.items():
        every = list(conditions)
        if type_column is not None:
            every.insert(0, type_column == steps[k].type)
        terms.append(case((and_(*every), 1 << k), else_=0) if every else literal(1 << k, Integer))
    return reduce(operator.add, terms)


def _any_step(
    step_matches: Mapping[int, list[ColumnElement[bool]]],
    steps: Sequence[StepPlan],
    type_column: ColumnElement[str] | None,
) -> ColumnElement[bool] | None:
    """The WHERE clause keeping rows that match some step (None when the type suffices)."""
    if not any(step_matches.values()):
        return None
    options = []
    for k, conditions in step_matches.items():
        every = list(conditions)
        if type_column is not None:
            every.insert(0, type_column == steps[k].type)
        if not every:
            return None  # this step takes every row of the source
        options.append(and_(*every))
    return or_(*options)


# --------------------------------------------------------------------------- statements


def _in_range(
    column: ColumnElement[Any], lo: dt.datetime | None, hi: dt.datetime
) -> list[ColumnElement[bool]]:
    """``lo <= column < hi`` (``lo`` None: no lower bound)."""
    return [column < hi] if lo is None else [column >= lo, column < hi]


def _starters(plan: FunnelPlan) -> Select[tuple[str]]:
    """Users with a row able to start a chain: step 1's type and filters in [start, end)."""
    first = plan.steps[0]
    if first.type == ORDER_STEP:
        o = ORDERS.alias("so")
        return select(o.c.buyer_id).where(
            o.c.tenant_id == plan.tenant_id,
            *_in_range(o.c.paid_at, plan.start, plan.end),
            o.c.buyer_id.is_not(None),
            *_order_matches(o, plan.tenant_id, plan.filters),
            *_order_matches(o, plan.tenant_id, first.filters),
        )
    src = _EventSource(plan.tenant_id, None, "se")
    e = src.e
    return (
        select(e.c.user_id)
        .select_from(src.source)
        .where(
            e.c.tenant_id == plan.tenant_id,
            e.c.type == first.type,
            *_in_range(e.c.occurred_at, plan.start, plan.end),
            *src.matches(plan.filters),
            *src.matches(first.filters),
        )
    )


def _starts(
    first: ColumnElement[bool] | None, time: ColumnElement[Any], plan: FunnelPlan
) -> ColumnElement[int]:
    """1 when the row can start a chain (step 1 in [start, end)), else 0."""
    if first is None:
        return literal(0, Integer)
    return case((and_(first, *_in_range(time, None, plan.end)), 1), else_=0)


def _unindexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``+column``: the same value, but SQLite's planner no longer uses an index on it."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _event_rows(
    plan: FunnelPlan, dialect: str, starters: Select[Any] | None, *, by_user: bool | None = None
) -> Select[Any]:
    """The event rows. ``by_user`` (SQLite, which groups them by user) steers the planner:

    * True: walk the ``(tenant_id, user_id, occurred_at, type)`` index in user order, which
      groups without a sort (for rows needing no other column: the index covers them);
    * False: not that index, whose order would cost a table lookup per row in random order:
      rather a filter's index (``content_id``) or the type-and-time index (lookups in about
      the table's order), then a sort.
    """
    indexed = [(k, s) for k, s in enumerate(plan.steps) if s.type != ORDER_STEP]
    wants_value = plan.breakdown is not None and not plan.first_is_order
    breakdown = plan.breakdown if wants_value else None
    src = _EventSource(plan.tenant_id, breakdown, "e", lookup=dialect != "postgresql")
    e = src.e
    step_matches = {k: src.matches(step.filters) for k, step in indexed}
    value: ColumnElement[Any] = src.dims[cast(str, plan.breakdown)] if wants_value else null()
    type_ = _unindexed(e.c.type) if by_user else e.c.type
    time = _unindexed(e.c.occurred_at) if by_user else e.c.occurred_at
    user = _unindexed(e.c.user_id) if by_user is False else e.c.user_id
    where: list[ColumnElement[bool]] = [
        e.c.tenant_id == plan.tenant_id,
        type_.in_(plan.event_types),
        *_in_range(time, plan.start, plan.until),
        *src.matches(plan.filters),
    ]
    any_step = _any_step(step_matches, plan.steps, e.c.type)
    if any_step is not None:
        where.append(any_step)
    if starters is not None:
        where.append(e.c.user_id.in_(starters))
    first = None if plan.first_is_order else and_(e.c.type == plan.steps[0].type, *step_matches[0])
    columns: list[ColumnElement[Any]] = [
        _epoch_us(e.c.occurred_at, dialect, plan).label("t"),
        _bit_mask(plan.steps, e.c.type, step_matches).label("mask"),
        type_coerce(value, String).label("value"),
        user.label("user_id"),
        _starts(first, e.c.occurred_at, plan).label("start"),
    ]
    return select(*columns).select_from(src.source).where(*where)


def _order_rows(plan: FunnelPlan, dialect: str, starters: Select[Any] | None) -> Select[Any]:
    o = ORDERS.alias("o")
    step_matches = {
        k: _order_matches(o, plan.tenant_id, step.filters)
        for k, step in enumerate(plan.steps)
        if step.type == ORDER_STEP
    }
    where: list[ColumnElement[bool]] = [
        o.c.tenant_id == plan.tenant_id,
        *_in_range(o.c.paid_at, plan.start, plan.until),
        o.c.buyer_id.is_not(None),
        *_order_matches(o, plan.tenant_id, plan.filters),
    ]
    any_step = _any_step(step_matches, plan.steps, None)
    if any_step is not None:
        where.append(any_step)
    if starters is not None:
        where.append(o.c.buyer_id.in_(starters))
    value: ColumnElement[Any] = (
        o.c.order_id if plan.breakdown is not None and plan.first_is_order else null()
    )
    first = and_(true(), *step_matches[0]) if plan.first_is_order else None
    columns: list[ColumnElement[Any]] = [
        _epoch_us(o.c.paid_at, dialect, plan).label("t"),
        _bit_mask(plan.steps, None, step_matches).label("mask"),
        type_coerce(value, String).label("value"),
        o.c.buyer_id.label("user_id"),
        _starts(first, o.c.paid_at, plan).label("start"),
    ]
    return select(*columns).where(*where)


def prune_with_semi_join(plan: FunnelPlan, dialect: str) -> bool:
    """Whether rows of users who cannot start a chain are also left out by a semi-join.

    ``HAVING`` on the per-user aggregate leaves them out anyway (the result is the same
    either way). The semi-join (``user_id IN (starters)``) drops their rows before
    grouping but costs another scan: worth it only when the first-step range is shorter
    than the window, i.e. when many users read have no start.
    """
    return plan.end - plan.start < plan.until - plan.end


def _union(plan: FunnelPlan, dialect: str, starters: Select[Any] | None) -> Subquery:
    parts: list[Select[Any]] = []
    if plan.event_types:
        parts.append(_event_rows(plan, dialect, starters))
    if plan.has_orders:
        parts.append(_order_rows(plan, dialect, starters))
    return parts[0].subquery("r") if len(parts) == 1 else union_all(*parts).subquery("r")


def window_us(plan: FunnelPlan) -> int:
    return to_epoch_us(plan.until) - to_epoch_us(plan.end)


def _bigints(column: ColumnElement[int]) -> FunctionElement[Any]:
    """PostgreSQL: bigints concatenated as 8-byte big-endian ``bytea`` (see :func:`_int_list`).

    Much cheaper for the driver than an ``int8[]`` of the same numbers, which it decodes one
    element at a time.
    """
    return func.string_agg(func.int8send(column), literal(b"", LargeBinary))


def _int_list(data: bytes | None) -> list[int]:
    """:func:`_bigints`' bytes → the numbers."""
    if not data:
        return []
    numbers = array("q")
    numbers.frombytes(data)
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers.tolist()


def _per_user(
    rows: Subquery, plan: FunnelPlan, dialect: str, also: Select[Any] | None
) -> Select[Any]:
    """One row per user: ``(user_id, starts, later, start_values, later_values)``.

    * ``starts`` - the times of the user's rows that can start a chain and match step 1
      only (most rows of a typical funnel: they need no mask);
    * ``later`` - the user's rows matching some later step, packed as
      ``t << MASK_BITS | mask`` (exact in a bigint until the year 2255); other rows (step 1
      only, out of range) can take part in no chain and are left out;
    * ``start_values``, ``later_values`` (breakdowns only, else NULL) - the rows'
      breakdown values, aligned (one aggregate node feeds each pair of aggregates the
      same rows in the same order).

    Arrays are PostgreSQL arrays or, on SQLite, JSON arrays, in no particular order. Users
    with a possible start are kept, and those of ``also`` (user ids).
    """
    agg = func.array_agg if dialect == "postgresql" else func.json_group_array
    ints = _bigints if dialect == "postgresql" else func.json_group_array
    packed = rows.c.t * (1 << MASK_BITS) + rows.c.mask
    pure_start = and_(rows.c.start == 1, rows.c.mask == 1)
    later = rows.c.mask > 1
    breakdown = plan.breakdown is not None

    def typed(column: ColumnElement[Any], name: str) -> ColumnElement[Any]:
        # NullType: the driver's lists come through as they are (SQLAlchemy's ARRAY result
        # processing would copy every array).
        return type_coerce(column, NullType()).label(name)

    columns: list[ColumnElement[Any]] = [
        rows.c.user_id.label("user_id"),
        typed(ints(rows.c.t).filter(pure_start), "starts"),
        typed(ints(packed).filter(later), "later"),
        typed(agg(rows.c.value).filter(pure_start) if breakdown else null(), "start_values"),
        typed(agg(rows.c.value).filter(later) if breakdown else null(), "later_values"),
    ]
    keep: ColumnElement[bool] = func.max(rows.c.start) == 1
    if also is not None:
        keep = or_(keep, rows.c.user_id.in_(also))
    return select(*columns).group_by(rows.c.user_id).having(keep)


def funnel_users_statement(plan: FunnelPlan, dialect: str) -> Select[Any]:
    """Every user who can start a chain, one row each (see :func:`_per_user`).

    No aggregate is ordered, so PostgreSQL hash-aggregates instead of sorting every row
    (the caller sorts each user's rows). On SQLite the statement covers events only and
    walks them in user order, grouping without a sort; the few order rows come from
    :func:`funnel_orders_statement` and are merged by the caller (a ``UNION ALL`` with
    them would need the sort), so their buyers are kept too.
    """
    starters = _starters(plan) if prune_with_semi_join(plan, dialect) else None
    if dialect == "postgresql" or not plan.event_types:
        return _per_user(_union(plan, dialect, starters), plan, dialect, None)
    wants_value = plan.breakdown is not None and not plan.first_is_order
    filtered = bool(plan.filters) or any(
        step.filters for step in plan.steps if step.type != ORDER_STEP
    )
    # The rows need a column beyond the user index: a filter's or the breakdown's.
    by_user = not (filtered or wants_value)
    rows = _event_rows(plan, dialect, starters, by_user=by_user).subquery("r")
    buyers = None
    if plan.has_orders:
        buyers = _order_rows(plan, dialect, starters).subquery("b")
        return _per_user(rows, plan, dialect, select(buyers.c.user_id))
    return _per_user(rows, plan, dialect, None)


def funnel_orders_statement(plan: FunnelPlan, dialect: str) -> Select[Any]:
    """SQLite, funnels with an ``order`` step: ``(user_id, t, mask, value, start)`` rows."""
    starters = _starters(plan) if prune_with_semi_join(plan, dialect) else None
    rows = _order_rows(plan, dialect, starters).subquery("o")
    return select(rows.c.user_id, rows.c.t, rows.c.mask, rows.c.value, rows.c.start)


# --------------------------------------------------------------------------- reading


class FunnelUser(NamedTuple):
    """One user, as :meth:`FunnelAccumulator.add_split` takes them (all lists ascending)."""

    starts: list[int]  # times of in-range rows matching step 1 only
    later: list[int]  # t << MASK_BITS | mask of rows matching some later step
    start_values: list[str | None] | None  # breakdown values, aligned (breakdown only)
    later_values: list[str | None] | None


async def _read_ahead(
    fetch: Callable[[], Awaitable[Sequence[Sequence[Any]]]],
) -> AsyncGenerator[Sequence[Sequence[Any]], None]:
    """Chunks from ``fetch()`` until an empty one, asking for the next before yielding.

    The database produces chunk k + 1 while the caller evaluates chunk k, instead of idling
    between requests. If the caller stops early (an error, a timeout), the fetch in flight
    is cancelled: the driver then cancels the statement.
    """
    pending = asyncio.ensure_future(fetch())
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(fetch())
            await asyncio.sleep(0)  # let the request go out before the caller computes
            yield rows
    finally:
        if not pending.done():
            pending.cancel()
            await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # retrieved: an error after the end is not reported twice


async def _fetch_chunks(
    session: AsyncSession, statement: Select[Any], chunk_size: int, *, read_ahead: bool
) -> AsyncGenerator[Sequence[Sequence[Any]], None]:
    """The statement's rows in chunks of ``chunk_size``, through a server-side cursor."""
    result = await session.stream(statement, execution_options={"yield_per": chunk_size})
    partitions = result.partitions(chunk_size)
    if not read_ahead:
        async for part in partitions:
            yield part
        return

    async def next_chunk() -> Sequence[Sequence[Any]]:
        try:
            return await anext(partitions)
        except StopAsyncIteration:
            return []

    async with aclosing(_read_ahead(next_chunk)) as chunks:
        async for rows in chunks:
            yield rows


class _UserOrders(NamedTuple):
    """A user's order rows (SQLite), merged into their per-user row."""

    starts: list[int]
    later: list[int]
    start_values: list[str | None]
    later_values: list[str | None]


def _orders_by_user(rows: Sequence[Sequence[Any]]) -> dict[str, _UserOrders]:
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


async def content_values(
    session: AsyncSession, plan: FunnelPlan, dialect: str
) -> dict[str, str] | None:
    """SQLite, breakdown by a read-model dimension of events: content id → its value."""
    key = plan.breakdown
    if dialect == "postgresql" or key not in CONTENT_KEYS or plan.first_is_order:
        return None  # PostgreSQL hash-joins the read model for next to nothing
    c = CONTENTS.alias("vc")
    if key == "platform":
        a = ACCOUNTS.alias("va")
        statement = (
            select(c.c.id, a.c.platform)
            .join(a, and_(a.c.tenant_id == plan.tenant_id, a.c.id == c.c.account_id))
            .where(c.c.tenant_id == plan.tenant_id)
        )
    else:
        column = c.c.account_id if key == "account_id" else c.c.kind
        statement = select(c.c.id, column).where(c.c.tenant_id == plan.tenant_id)
    rows = await session.execute(statement)
    return dict(rows.tuples().all())


def _translator(
    breakdown: str | None, values: dict[str, str] | None
) -> Callable[[list[str | None]], list[str | None]] | None:
    """Rows' raw breakdown values (see _EventSource) → the values, for read-model keys."""
    if values is None:
        return None
    find = values.get
    if breakdown == "platform":
        mark = CONTENT_MARK

        def platform(raw: list[str | None]) -> list[str | None]:
            return [v if v is None or v[0] != mark else find(v[1:]) for v in raw]

        return platform

    def by_content(raw: list[str | None]) -> list[str | None]:
        return [None if v is None else find(v) for v in raw]

    return by_content


class _Reader:
    """Per-user rows (:func:`_per_user`) → :class:`FunnelUser`: decoded, merged, sorted."""

    def __init__(
        self,
        plan: FunnelPlan,
        json_arrays: bool,
        orders: dict[str, _UserOrders],
        values: dict[str, str] | None,
    ):
        self.breakdown = plan.breakdown is not None
        self.json_arrays = json_arrays
        self.orders = orders
        self.translate = _translator(plan.breakdown, values)

    def users(self, chunk: Sequence[Sequence[Any]]) -> list[FunnelUser]:
        return [self.user(*row) for row in chunk]

    def leftover(self) -> list[FunnelUser]:
        """Users with order rows but no event row (SQLite)."""
        return [self.user(user_id, None, None, None, None) for user_id in list(self.orders)]

    def user(
        self, user_id: str, starts: Any, later: Any, start_values: Any, later_values: Any
    ) -> FunnelUser:
        if self.json_arrays:
            loads = orjson.loads
            starts = [] if starts is None else loads(starts)
            later = [] if later is None else loads(later)
            if self.breakdown:
                start_values = [] if start_values is None else loads(start_values)
                later_values = [] if later_values is None else loads(later_values)
        else:
            starts = _int_list(starts)
            later = _int_list(later)
            if self.breakdown:
                start_values = start_values or []
                later_values = later_values or []
        if self.translate is not None:
            start_values = self.translate(start_values)
            later_values = self.translate(later_values)
        orders = self.orders.pop(user_id, None) if self.orders else None
        if orders is not None:
            starts = starts + orders.starts
            later = later + orders.later
            if self.breakdown:
                start_values = start_values + orders.start_values
                later_values = later_values + orders.later_values
        if not self.breakdown:
            starts.sort()
            later.sort()
            return FunnelUser(starts, later, None, None)
        starts, start_values = _sorted_pairs(starts, start_values)
        later, later_values = _sorted_pairs(later, later_values)
        return FunnelUser(starts, later, start_values, later_values)


def _sorted_pairs(keys: list[int], values: list[str | None]) -> tuple[list[int], list[str | None]]:
    """``keys`` ascending, ``values`` reordered alike."""
    ordered = sorted(keys)
    if ordered == keys:  # rows often come in time order already
        return keys, values
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], [values[i] for i in order]


async def stream_users(
    session: AsyncSession, plan: FunnelPlan
) -> AsyncGenerator[list[FunnelUser], None]:
    """Every user who can start a chain, in chunks of users."""
    dialect = session.get_bind().dialect.name
    orders: dict[str, _UserOrders] = {}
    if dialect == "postgresql":
        # The per-user aggregate holds every user's arrays at once: in memory, not spilled.
        await session.execute(
            text("SELECT set_config('work_mem', :size, true)"), {"size": WORK_MEM}
        )
        # The server computes the next chunk while this process evaluates one.
        chunk_size, read_ahead = 2_000, True
    else:
        if plan.has_orders and plan.event_types:
            rows = await session.execute(funnel_orders_statement(plan, dialect))
            orders = _orders_by_user(rows.tuples().all())
        # SQLite runs in a thread of this process, which needs the GIL for every row it
        # hands over: running it beside the evaluation measured slower than in turns, in
        # large chunks.
        chunk_size, read_ahead = 20_000, False
    reader = _Reader(
        plan, dialect != "postgresql", orders, await content_values(session, plan, dialect)
    )
    statement = funnel_users_statement(plan, dialect)
    chunks = _fetch_chunks(session, statement, chunk_size, read_ahead=read_ahead)
    async with aclosing(chunks):
        async for chunk in chunks:
            yield reader.users(chunk)
    if orders:
        yield reader.leftover()


async def order_breakdown_values(
    session: AsyncSession, plan: FunnelPlan
) -> dict[str, frozenset[str]]:
    """For ``order`` first steps: breakdown values of the orders paid in [start, end).

    An order has the values of its last-touch credits (several credits, several values).
    """
    credit, dim, source = _credit_dimension(plan.tenant_id, cast(str, plan.breakdown), "bc")
    rows = await session.execute(
        select(credit.c.order_id, dim)
        .select_from(source)
        .where(
            credit.c.tenant_id == plan.tenant_id,
            credit.c.model == ORDER_MODEL,
            *_in_range(credit.c.paid_at, plan.start, plan.end),
            dim.is_not(None),
        )
        .distinct()
    )
    values: dict[str, set[str]] = {}
    for order_id, value in rows.tuples():
        values.setdefault(order_id, set()).add(value)
    return {order_id: frozenset(found) for order_id, found in values.items()}
