"""The funnel's SQL statements, built from a plan (run by :mod:`.repository`).

Rows that may take part in a chain are selected as ``(t, mask, value, user_id, start)``:

* ``t`` - the event's ``occurred_at`` (an order's ``paid_at``) in epoch microseconds;
* ``mask`` - bit ``k`` set when the row matches step ``k + 1`` (type and per-step filters),
  computed in SQL;
* ``value`` - the breakdown value of an event (step 1 is an event type), or the
  ``order_id`` of an order when step 1 is ``order`` with a breakdown (an order can have
  several values, looked up once by :func:`order_breakdown_statement`); else NULL;
* ``user_id`` - the event's user, or the order's stitched buyer;
* ``start`` - 1 when the row can start a chain (step 1, in ``[from, to)``).

They are the tenant's events of the funnel's types (and its paid orders, when a step is
``order``) with a time in ``[from, to + window)``, passing the global filters and at least
one step's filters. Filters on the catalog read model (account, content kind, platform)
become ``content_id IN (…)`` of the matching contents; the read model is joined only for a
breakdown by one of those (on SQLite its values are looked up per content instead,
:func:`content_values_statement`).

The rows are then aggregated into one row per user who can start a chain
(:func:`funnel_users_statement`), in two unordered lists: the times of the rows matching
step 1 only (most rows of a typical funnel) and the packed ``t << MASK_BITS | mask`` of the
rows matching a later step, all that ``FunnelAccumulator.add_split`` needs. PostgreSQL
hash-aggregates events and orders together (no sort). SQLite aggregates the events alone,
walking them in user order when an index covers them, and the few order rows are merged
per user by the reader (:func:`funnel_orders_statement`).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Integer,
    LargeBinary,
    Select,
    String,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType

from services.attribution.funnels.engine import MASK_BITS
from services.attribution.funnels.planner import (
    CONTENT_KEYS,
    CONTENT_MARK,
    ORDER_STEP,
    FunnelPlan,
    ReadPlan,
    StepPlan,
)
from services.attribution.models import (
    CatalogAccount,
    CatalogContent,
    Credit,
    Event,
    Order,
    OrderLine,
)
from shared.db import to_epoch_us

#: The attribution model whose credits give an order its contents and ads.
ORDER_MODEL = "last_touch"

#: ``(user_id, t, mask, value, start)``: one order row (SQLite reads them apart).
OrderRowColumns = tuple[str, int, int, str | None, int]
#: A user's times as the driver gives them: PostgreSQL's bigints in a ``bytea``, SQLite's
#: JSON text; None when the user has no such row.
RawInts = bytes | str | None
#: A user's breakdown values: a PostgreSQL array, SQLite's JSON text, or None.
RawValues = list[str | None] | str | None
#: ``(user_id, starts, later, start_values, later_values)``: one user's lists, as the
#: driver hands them over (see :func:`_per_user`; decoded by the reader).
UserRowColumns = tuple[str, RawInts, RawInts, RawValues, RawValues]

# --------------------------------------------------------------------------- expressions


def _epoch_us(column: ColumnElement[Any], read: ReadPlan, plan: FunnelPlan) -> ColumnElement[int]:
    """A UTCDateTime column as integer epoch microseconds, computed by the database."""
    if read.postgres:
        # EXTRACT(EPOCH ...) is numeric (slow); date_part() is a float8, exact here because
        # it is taken relative to the plan's start: rows lie within the funnel's range plus
        # its window, so the offset stays far below 2**53 microseconds and rounding gives it
        # back exactly.
        offset = func.date_part("epoch", column - plan.start) * 1_000_000
        return sql_cast(offset, BigInteger) + to_epoch_us(plan.start)  # the cast rounds
    # SQLite stores UTCDateTime as integer epoch microseconds already.
    return type_coerce(column, BigInteger)


def _stream_columns(
    user_id: ColumnElement[Any],
    t: ColumnElement[int],
    item_id: ColumnElement[Any],
    mask: ColumnElement[Any],
    value: ColumnElement[Any],
    *,
    is_order: int,
    held: Sequence[ColumnElement[Any]],
) -> list[ColumnElement[Any]]:
    """The columns of one part of the item stream, events' or orders': ``user_id``, ``t``
    (epoch µs), ``item_id``, ``mask``, ``value`` (the breakdown's), ``is_order`` and the held
    dimensions ``h0``…"""
    return [
        user_id.label("user_id"),
        t.label("t"),
        item_id.label("item_id"),
        mask.label("mask"),
        type_coerce(value, String).label("value"),
        literal(is_order, Integer).label("is_order"),
        *(type_coerce(column, String).label(f"h{i}") for i, column in enumerate(held)),
    ]


class _EventSource:
    """``events`` (aliased), LEFT JOINed to the read model only for a breakdown needing it.

    Filters on a dimension of the read model become ``content_id IN (…)`` of the tenant's
    matching contents, which the database evaluates once instead of joining every row.
    """

    def __init__(
        self, tenant_id: str, breakdown: str | None, name: str, *, lookup: bool = False
    ) -> None:
        e = Event.__table__.alias(name)
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
            # ``lookup`` (SQLite): read-model values are looked up by the reader rather than
            # joined for every row (two index searches each): the content, or for the
            # platform the event's own platform, else its content marked with CONTENT_MARK.
            content: ColumnElement[Any] = e.c.content_id
            if breakdown == "platform":
                content = func.coalesce(e.c.platform, literal(CONTENT_MARK) + e.c.content_id)
            dims[breakdown] = content
        elif breakdown in CONTENT_KEYS:
            c = CatalogContent.__table__.alias(f"{name}_content")
            joined = joined.outerjoin(c, and_(c.c.tenant_id == tenant_id, c.c.id == e.c.content_id))
            dims["account_id"] = c.c.account_id
            dims["content_kind"] = c.c.kind
            if breakdown == "platform":
                a = CatalogAccount.__table__.alias(f"{name}_account")
                joined = joined.outerjoin(
                    a, and_(a.c.tenant_id == tenant_id, a.c.id == c.c.account_id)
                )
                dims["platform"] = func.coalesce(e.c.platform, a.c.platform)
        self.source = joined
        self.dims = dims

    def _contents(self, key: str, value: str) -> Select[tuple[str]]:
        """The tenant's contents whose ``key`` (account_id, content_kind, platform) is value."""
        c = CatalogContent.__table__.alias(f"{self.name}_fc")
        if key == "account_id":
            return select(c.c.id).where(c.c.tenant_id == self.tenant_id, c.c.account_id == value)
        if key == "content_kind":
            return select(c.c.id).where(c.c.tenant_id == self.tenant_id, c.c.kind == value)
        a = CatalogAccount.__table__.alias(f"{self.name}_fa")
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
            line = OrderLine.__table__.alias("fl")
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
    credit = Credit.__table__.alias(name)
    if key in ("content_id", "ad_id"):
        return credit, credit.c[key], credit
    content = CatalogContent.__table__.alias(f"{name}_content")
    on_content = and_(content.c.tenant_id == tenant_id, content.c.id == credit.c.content_id)
    if key == "account_id":
        return credit, content.c.account_id, credit.join(content, on_content)
    if key == "content_kind":
        return credit, content.c.kind, credit.join(content, on_content)
    touch = Event.__table__.alias(f"{name}_touch")
    account = CatalogAccount.__table__.alias(f"{name}_account")
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
    column: ColumnElement[Any], lo: dt.datetime | None, hi: dt.datetime | None
) -> list[ColumnElement[bool]]:
    """``lo <= column < hi`` (a bound that is None is left out)."""
    bounds = [] if lo is None else [column >= lo]
    return bounds if hi is None else [*bounds, column < hi]


def _starters(plan: FunnelPlan) -> Select[tuple[str]]:
    """Users with a row able to start a chain: step 1's type and filters in [start, end)."""
    first = plan.steps[0]
    if first.type == ORDER_STEP:
        o = Order.__table__.alias("so")
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


def _event_rows(plan: FunnelPlan, read: ReadPlan, starters: Select[Any] | None) -> Select[Any]:
    """The event rows. ``read.by_user`` (SQLite, which groups them by user) steers the planner:

    * True: walk the ``(tenant_id, user_id, occurred_at, type)`` index in user order, which
      groups without a sort (for rows needing no other column: the index covers them);
    * False: not that index, whose order would cost a table lookup per row in random order:
      rather a filter's index (``content_id``) or the type-and-time index (lookups in about
      the table's order), then a sort.
    """
    by_user = read.by_user
    indexed = [(k, s) for k, s in enumerate(plan.steps) if s.type != ORDER_STEP]
    breakdown = plan.breakdown if plan.breaks_down_events else None
    src = _EventSource(plan.tenant_id, breakdown, "e", lookup=read.lookup_contents)
    e = src.e
    step_matches = {k: src.matches(step.filters) for k, step in indexed}
    value: ColumnElement[Any] = src.dims[breakdown] if breakdown is not None else null()
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
        _epoch_us(e.c.occurred_at, read, plan).label("t"),
        _bit_mask(plan.steps, e.c.type, step_matches).label("mask"),
        type_coerce(value, String).label("value"),
        user.label("user_id"),
        _starts(first, e.c.occurred_at, plan).label("start"),
    ]
    return select(*columns).select_from(src.source).where(*where)


def _order_rows(plan: FunnelPlan, read: ReadPlan, starters: Select[Any] | None) -> Select[Any]:
    o = Order.__table__.alias("o")
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
        _epoch_us(o.c.paid_at, read, plan).label("t"),
        _bit_mask(plan.steps, None, step_matches).label("mask"),
        type_coerce(value, String).label("value"),
        o.c.buyer_id.label("user_id"),
        _starts(first, o.c.paid_at, plan).label("start"),
    ]
    return select(*columns).where(*where)


def _union(plan: FunnelPlan, read: ReadPlan, starters: Select[Any] | None) -> Subquery:
    parts: list[Select[Any]] = []
    if plan.event_types:
        parts.append(_event_rows(plan, read, starters))
    if plan.has_orders:
        parts.append(_order_rows(plan, read, starters))
    return parts[0].subquery("r") if len(parts) == 1 else union_all(*parts).subquery("r")


def _bigints(column: ColumnElement[int]) -> FunctionElement[Any]:
    """PostgreSQL: bigints concatenated as 8-byte big-endian ``bytea`` (decoded by the reader).

    Much cheaper for the driver than an ``int8[]`` of the same numbers, which it decodes one
    element at a time.
    """
    return func.string_agg(func.int8send(column), literal(b"", LargeBinary))


def _per_user(
    rows: Subquery, plan: FunnelPlan, read: ReadPlan, also: Select[Any] | None
) -> Select[UserRowColumns]:
    """One row per user: ``(user_id, starts, later, start_values, later_values)``.

    * ``starts`` - the times of the user's rows that can start a chain and match step 1
      only (most rows of a typical funnel: they need no mask);
    * ``later`` - the user's rows matching some later step, packed as
      ``t << MASK_BITS | mask`` (exact in a bigint until the year 2255); other rows (step 1
      only, out of range) can take part in no chain and are left out;
    * ``start_values``, ``later_values`` (breakdowns only, else NULL) - the rows'
      breakdown values, aligned (one aggregate node feeds each pair of aggregates the
      same rows in the same order).

    PostgreSQL gives the times as big-endian bigints in a ``bytea`` and the values as
    arrays; SQLite gives JSON arrays; in no particular order. Users with a possible start
    are kept, and those of ``also`` (user ids).
    """
    agg = func.array_agg if read.postgres else func.json_group_array
    ints = _bigints if read.postgres else func.json_group_array
    packed = rows.c.t * (1 << MASK_BITS) + rows.c.mask
    pure_start = and_(rows.c.start == 1, rows.c.mask == 1)
    later = rows.c.mask > 1
    breakdown = plan.breakdown is not None

    def typed(column: ColumnElement[Any], name: str) -> ColumnElement[Any]:
        # NullType: the driver's lists come through as they are (SQLAlchemy's ARRAY result
        # processing would copy every array).
        return type_coerce(column, NullType()).label(name)

    keep: ColumnElement[bool] = func.max(rows.c.start) == 1
    if also is not None:
        keep = or_(keep, rows.c.user_id.in_(also))
    return (
        select(
            type_coerce(rows.c.user_id, String).label("user_id"),
            typed(ints(rows.c.t).filter(pure_start), "starts"),
            typed(ints(packed).filter(later), "later"),
            typed(agg(rows.c.value).filter(pure_start) if breakdown else null(), "start_values"),
            typed(agg(rows.c.value).filter(later) if breakdown else null(), "later_values"),
        )
        .group_by(rows.c.user_id)
        .having(keep)
    )


def funnel_users_statement(plan: FunnelPlan, read: ReadPlan) -> Select[UserRowColumns]:
    """Every user who can start a chain, one row each (see :func:`_per_user`).

    No aggregate is ordered, so PostgreSQL hash-aggregates instead of sorting every row
    (the reader sorts each user's rows). With ``read.orders_apart`` (SQLite) the statement
    covers events only and walks them in user order, grouping without a sort; the few order
    rows come from :func:`funnel_orders_statement` and are merged by the reader (a
    ``UNION ALL`` with them would need the sort), so their buyers are kept too.
    """
    starters = _starters(plan) if read.semi_join else None
    if not read.orders_apart:
        return _per_user(_union(plan, read, starters), plan, read, None)
    rows = _event_rows(plan, read, starters).subquery("r")
    buyers = _order_rows(plan, read, starters).subquery("b")
    return _per_user(rows, plan, read, select(buyers.c.user_id))


def funnel_orders_statement(plan: FunnelPlan, read: ReadPlan) -> Select[OrderRowColumns]:
    """With ``read.orders_apart``: ``(user_id, t, mask, value, start)`` of the order rows."""
    starters = _starters(plan) if read.semi_join else None
    rows = _order_rows(plan, read, starters).subquery("o")
    return select(
        type_coerce(rows.c.user_id, String),
        type_coerce(rows.c.t, BigInteger),
        type_coerce(rows.c.mask, Integer),
        type_coerce(rows.c.value, String),
        type_coerce(rows.c.start, Integer),
    )


def content_values_statement(plan: FunnelPlan) -> Select[tuple[str, str]]:
    """Content id → its value of the breakdown's read-model dimension, for the tenant."""
    c = CatalogContent.__table__.alias("vc")
    if plan.breakdown == "platform":
        a = CatalogAccount.__table__.alias("va")
        return (
            select(type_coerce(c.c.id, String), type_coerce(a.c.platform, String))
            .join(a, and_(a.c.tenant_id == plan.tenant_id, a.c.id == c.c.account_id))
            .where(c.c.tenant_id == plan.tenant_id)
        )
    column = c.c.account_id if plan.breakdown == "account_id" else c.c.kind
    return select(type_coerce(c.c.id, String), type_coerce(column, String)).where(
        c.c.tenant_id == plan.tenant_id
    )


def order_breakdown_statement(plan: FunnelPlan, key: str) -> Select[tuple[str, str]]:
    """``(order_id, value)``: values of ``key`` of the orders paid in [start, end).

    An order has the values of its last-touch credits (several credits, several values).
    """
    credit, dim, source = _credit_dimension(plan.tenant_id, key, "bc")
    return (
        select(type_coerce(credit.c.order_id, String), type_coerce(dim, String))
        .select_from(source)
        .where(
            credit.c.tenant_id == plan.tenant_id,
            credit.c.model == ORDER_MODEL,
            *_in_range(credit.c.paid_at, plan.start, plan.end),
            dim.is_not(None),
        )
        .distinct()
    )


def order_values_statement(plan: FunnelPlan, key: str) -> Select[tuple[str, str]]:
    """``(order_id, value)``: values of ``key`` of the orders paid in ``[start, end + window)``
    (every order a stream may hold): its lines' products, or its last-touch credits' value."""
    o = Order.__table__.alias("vo")
    paid = [
        o.c.tenant_id == plan.tenant_id,
        *_in_range(o.c.paid_at, plan.start, plan.until),
        o.c.buyer_id.is_not(None),
    ]
    if key == "product_id":
        line = OrderLine.__table__.alias("vl")
        on_line = and_(line.c.tenant_id == plan.tenant_id, line.c.order_id == o.c.order_id)
        return (
            select(type_coerce(o.c.order_id, String), type_coerce(line.c.product_id, String))
            .join(line, on_line)
            .where(*paid)
            .distinct()
        )
    credit, dim, source = _credit_dimension(plan.tenant_id, key, "vc")
    on_order = and_(o.c.tenant_id == plan.tenant_id, o.c.order_id == credit.c.order_id)
    return (
        select(type_coerce(o.c.order_id, String), type_coerce(dim, String))
        .select_from(source.join(o, on_order))
        .where(
            credit.c.tenant_id == plan.tenant_id,
            credit.c.model == ORDER_MODEL,
            *paid,
            dim.is_not(None),
        )
        .distinct()
    )


# --------------------------------------------------------------------------- user streams

#: ``(user_id, t, item_id, mask, value, is_order, *held)``: one item of a user's stream
#: (see :func:`stream_rows_statement`).
StreamRowColumns = tuple[Any, ...]


def stream_rows_statement(plan: FunnelPlan, read: ReadPlan) -> Select[StreamRowColumns]:
    """Each item of each user's stream in ``[start, end + window)``, grouped by user.

    ``mask`` has bit ``k`` for step ``k + 1`` and bit ``n + i`` for exclusion ``i`` (global
    filters are part of every bit: an item failing them matches nothing, but it is still
    an item of the stream). ``value`` is an event's breakdown value, or an order's id (its
    values are those of its credits). Then one column per held dimension: an event's value
    (NULL for an order, whose values are looked up by its id). A strict funnel needs every
    item of the user (any item between two steps breaks a chain); the other modes only the
    items matching a bit.
    Rows come by user; within a user the reader orders them (time, then id).
    """
    steps = plan.stream_steps
    strict = plan.order == "strict"
    parts: list[Select[Any]] = []
    event_types = sorted({s.type for s in steps if s.type != ORDER_STEP})
    if strict or event_types:
        breakdown = plan.breakdown
        needed = {*plan.hold, *([breakdown] if breakdown else [])}
        # The read model is joined for the breakdown's and the held dimensions' values.
        joins = (
            "platform"
            if "platform" in needed
            else "account_id"
            if needed & {"account_id", "content_kind"}
            else None
        )
        src = _EventSource(plan.tenant_id, joins, "e")
        e = src.e
        every = src.matches(plan.filters)
        matches = {
            k: [*every, *src.matches(s.filters)]
            for k, s in enumerate(steps)
            if s.type != ORDER_STEP
        }
        where = [
            e.c.tenant_id == plan.tenant_id,
            *_in_range(e.c.occurred_at, plan.start, plan.until),
        ]
        if not strict:
            where.append(e.c.type.in_(event_types))
            any_step = _any_step(matches, steps, e.c.type)
            if any_step is not None:
                where.append(any_step)
        value: ColumnElement[Any] = src.dims[breakdown] if breakdown is not None else null()
        mask = _bit_mask(steps, e.c.type, matches) if matches else literal(0, Integer)
        held = [src.dims[key] for key in plan.hold]
        parts.append(
            select(
                *_stream_columns(
                    e.c.user_id,
                    _epoch_us(e.c.occurred_at, read, plan),
                    e.c.event_id,
                    mask,
                    value,
                    is_order=0,
                    held=held,
                )
            )
            .select_from(src.source)
            .where(*where)
        )
    if strict or any(s.type == ORDER_STEP for s in steps):
        o = Order.__table__.alias("o")
        every = _order_matches(o, plan.tenant_id, plan.filters)
        matches = {
            k: [*every, *_order_matches(o, plan.tenant_id, s.filters)]
            for k, s in enumerate(steps)
            if s.type == ORDER_STEP
        }
        where = [
            o.c.tenant_id == plan.tenant_id,
            *_in_range(o.c.paid_at, plan.start, plan.until),
            o.c.buyer_id.is_not(None),
        ]
        if not strict:
            any_step = _any_step(matches, steps, None)
            if any_step is not None:
                where.append(any_step)
        mask = _bit_mask(steps, None, matches) if matches else literal(0, Integer)
        parts.append(
            select(
                *_stream_columns(
                    o.c.buyer_id,
                    _epoch_us(o.c.paid_at, read, plan),
                    o.c.order_id,
                    mask,
                    o.c.order_id,
                    is_order=1,
                    held=[null()] * len(plan.hold),
                )
            ).where(*where)
        )
    rows = parts[0].subquery("s") if len(parts) == 1 else union_all(*parts).subquery("s")
    statement = select(
        type_coerce(rows.c.user_id, String),
        type_coerce(rows.c.t, BigInteger),
        type_coerce(rows.c.item_id, String),
        type_coerce(rows.c.mask, Integer),
        type_coerce(rows.c.value, String),
        type_coerce(rows.c.is_order, Integer),
        *(type_coerce(rows.c[f"h{i}"], String) for i in range(len(plan.hold))),
    ).order_by(rows.c.user_id)
    # The value may be NULL, which type_coerce's String does not say.
    return cast(Select[StreamRowColumns], statement)
