"""Funnels answered from the analytic store (:class:`ClickHouseFunnelSource`).

For an ordered funnel, ClickHouse selects the tenant's rows in range,
computes each row's step bitmask (type, global and per-step filters), sorts each user's
useful rows by ``(t, mask)`` and folds them into the user's chosen chain (the exact engine's
fast path, :func:`_fold`), returning users per level and the chains' gaps per funnel and
breakdown value. Equal times are folded too when each of the user's useful rows matches one
step (equal times then chain in step order, as the engine's tie-aware search would take
them); a user with a row matching two steps at a shared time is read back and counted by the
engine (``FunnelAccumulator.add_split``), so the answer is the system of record's, to the user.

Filters on catalog dimensions (account, content kind, platform) become ``content_id IN (…)``
of the tenant's matching contents, read from the attribution database's catalog read model;
a breakdown by one of them maps content ids to values the same way.

An ``order`` step reads the tenant's visible orders (:mod:`.order_replication`) as rows of
their buyer at their paid time, matching an order step's filters as the SQL source's
``_order_matches`` does (a line's product, a last-touch credit's content, ad, account, kind
or platform). With a breakdown from an ``order`` first step an order row's value is the list
of its credits' values (:func:`_multi`).

The other modes (strict and unordered funnels, exclusions, optional steps, held dimensions,
breakdown attribution, time to convert, trends, the users of a step) read each user's whole
stream from ClickHouse, sorted there (:func:`stream_statement`), and evaluate it with
:mod:`~services.attribution.funnels.modes`, the same code the SQL source runs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.store import instant_literal, micros, quote, quote_list
from services.attribution.funnels.engine import (
    MASK_BITS,
    FunnelAccumulator,
    FunnelResult,
    Tally,
)
from services.attribution.funnels.modes import (
    NO_HELD,
    Held,
    StreamItem,
    breakdown_outcomes,
    evaluate_user,
)
from services.attribution.funnels.planner import (
    CONTENT_KEYS,
    CONTENT_MARK,
    ORDER_STEP,
    FunnelPlan,
)
from services.attribution.funnels.reader import (
    OrderLookups,
    StreamDecoder,
    StreamUser,
    order_lookups,
)
from services.attribution.funnels.repository import FunnelRepository
from services.attribution.funnels.source import StreamModeSource, mode_spec
from services.attribution.models import CatalogAccount, CatalogContent
from shared.db import to_epoch_us


class ClickHouseFunnelSource(StreamModeSource):
    """Every funnel from ClickHouse: plain ordered funnels counted by one statement, the
    other modes evaluated over the users' streams it reads (:func:`stream_statement`)."""

    def __init__(self, session: AsyncSession, replicator: EventReplicator) -> None:
        self._session = session
        self._replicator = replicator

    async def step_counts(self, plan: FunnelPlan) -> FunnelResult:
        if held_fold(plan):
            return await self._held_counts(plan)
        if last_step_fold(plan):
            return await self._last_step_counts(plan)
        if not plan.plain:
            return await self.mode_counts(plan)
        # Read-your-writes: whatever the system of record holds is copied before reading.
        await self._replicator.catch_up()
        contents = await self._content_filters(plan)
        values = await self._content_values(plan)
        acc = FunnelAccumulator(
            len(plan.steps),
            plan.window_us,
            to_epoch_us(plan.start),
            to_epoch_us(plan.end),
            breakdown=plan.breakdown is not None,
        )
        # One scan: ClickHouse counts every user but those with a row matching two steps at a
        # shared time, whose rows come back for the engine's tie-aware search.
        n = len(plan.steps)
        counted = await self._replicator.store.arows(
            funnel_counts_statement(plan, contents, values)
        )
        for keyed, value, *figures in counted:
            _add_counted(acc.tally(value if keyed else None), figures, n)
            for rows in figures[2 * n - 1]:
                _add_tied(acc, plan, rows)
        return acc.result()

    async def _last_step_counts(self, plan: FunnelPlan) -> FunnelResult:
        """:func:`last_step_counts_statement`'s counts; its tied users counted by the modes'
        engine."""
        await self._replicator.catch_up()
        contents = await self._content_filters(plan)
        values = await self._content_values(plan)
        n = len(plan.steps)
        acc = FunnelAccumulator(
            n, plan.window_us, to_epoch_us(plan.start), to_epoch_us(plan.end), breakdown=True
        )
        counted = await self._replicator.store.arows(
            last_step_counts_statement(plan, contents, values)
        )
        spec = mode_spec(plan)
        for keyed, value, *figures in counted:
            _add_counted(acc.tally(value if keyed else None), figures, n)
            for rows in figures[2 * n - 1]:
                items: list[StreamItem] = [
                    (int(t), int(mask), 0, frozenset(vs), NO_HELD) for t, mask, vs in rows
                ]
                outcome = evaluate_user(items, spec)
                if outcome.chain is None:
                    continue
                acc.tally().add(outcome.chain)
                for found_value, found in breakdown_outcomes(items, spec, outcome):
                    if found.chain is not None:
                        acc.tally(found_value).add(found.chain)
        return acc.result()

    async def _held_counts(self, plan: FunnelPlan) -> FunnelResult:
        """:func:`held_counts_statement`'s counts; its tied users counted by the engine."""
        await self._replicator.catch_up()
        contents, catalog = await self._stream_lookups(plan)
        n = len(plan.steps)
        acc = FunnelAccumulator(n, plan.window_us, to_epoch_us(plan.start), to_epoch_us(plan.end))
        [counted] = await self._replicator.store.arows(
            held_counts_statement(plan, contents, catalog)
        )
        tally = acc.tally()
        _add_counted(tally, counted, n)
        for depth, best, groups in counted[2 * n - 1]:
            chains = [tuple(int(t) for t in best[: int(depth)])] if int(depth) else []
            for rows in groups:
                found = acc.best_chain([(int(t), int(mask)) for t, mask in rows])
                if found is not None:
                    chains.append(found)
            if chains:
                tally.add(max(chains, key=_preference))
        return acc.result()

    async def item_streams(
        self, plan: FunnelPlan, least_level: int = 1
    ) -> AsyncGenerator[list[StreamUser], None]:
        await self._replicator.catch_up()
        contents, catalog = await self._stream_lookups(plan)
        # An order's breakdown and held values (its lines' and last-touch credits') come
        # from the attribution database, in this request's snapshot, by the order's id.
        lookups = await order_lookups(FunnelRepository(self._session), plan)
        rows = await self._replicator.store.arows(
            stream_statement(plan, contents, catalog, least_level)
        )
        for first in range(0, len(rows), _USERS_PER_CHUNK):
            yield _decode_streams(plan, lookups, rows[first : first + _USERS_PER_CHUNK])

    async def entered_counts(
        self, plan: FunnelPlan, bounds: Sequence[tuple[int, int]]
    ) -> list[int] | None:
        if plan.hold and orders_may_enter(plan):
            return None  # an order's held values are in the attribution database
        await self._replicator.catch_up()
        contents, catalog = await self._stream_lookups(plan)
        counted = await self._replicator.store.arows(
            entered_statement(plan, contents, catalog, bounds)
        )
        entered = [0] * len(bounds)
        for p, users in counted:
            entered[int(p) - 1] = int(users)
        return entered

    async def _stream_lookups(
        self, plan: FunnelPlan
    ) -> tuple[dict[tuple[str, str], list[str]], dict[str, dict[str, str]]]:
        """The content ids of each catalog filter, and content id → value of each catalog
        dimension held or broken down by."""
        contents = await self._content_filters(plan)
        keys = {*plan.hold, *([plan.breakdown] if plan.breakdown else [])} & CONTENT_KEYS
        catalog = {key: await self._catalog_values(plan.tenant_id, key) for key in sorted(keys)}
        return contents, catalog

    async def _content_filters(self, plan: FunnelPlan) -> dict[tuple[str, str], list[str]]:
        """For each catalog filter ``(key, value)`` used: the tenant's matching content ids."""
        wanted = {
            (key, value)
            for filters in (plan.filters, *(s.filters for s in plan.stream_steps))
            for key, value in filters.items()
            if key in CONTENT_KEYS
        }
        c = CatalogContent.__table__
        a = CatalogAccount.__table__
        out: dict[tuple[str, str], list[str]] = {}
        for key, value in sorted(wanted):
            if key == "account_id":
                q = select(c.c.id).where(c.c.tenant_id == plan.tenant_id, c.c.account_id == value)
            elif key == "content_kind":
                q = select(c.c.id).where(c.c.tenant_id == plan.tenant_id, c.c.kind == value)
            else:
                q = (
                    select(c.c.id)
                    .join(a, and_(a.c.tenant_id == plan.tenant_id, a.c.id == c.c.account_id))
                    .where(c.c.tenant_id == plan.tenant_id, a.c.platform == value)
                )
            out[key, value] = list((await self._session.execute(q)).scalars())
        return out

    async def _content_values(self, plan: FunnelPlan) -> dict[str, str] | None:
        """Content id → the breakdown's catalog value (a breakdown by one of those only)."""
        if plan.breakdown not in CONTENT_KEYS:
            return None
        return await self._catalog_values(plan.tenant_id, plan.breakdown)

    async def _catalog_values(self, tenant_id: str, key: str) -> dict[str, str]:
        """Content id → its value of a catalog dimension (account, content kind, platform)."""
        c = CatalogContent.__table__
        a = CatalogAccount.__table__
        q: Any
        if key == "platform":
            q = (
                select(c.c.id, a.c.platform)
                .join(a, and_(a.c.tenant_id == tenant_id, a.c.id == c.c.account_id))
                .where(c.c.tenant_id == tenant_id)
            )
        else:
            column = c.c.account_id if key == "account_id" else c.c.kind
            q = select(c.c.id, column).where(c.c.tenant_id == tenant_id)
        return {str(k): str(v) for k, v in (await self._session.execute(q)).tuples()}


_NO_VALUES: frozenset[str] = frozenset()
#: Users handed to a mode's accumulator at a time.
_USERS_PER_CHUNK = 2_000


def _add_counted(tally: Tally, figures: Sequence[Any], n: int) -> None:
    """A counting statement's users per level (``figures[:n]``) and gaps from each step to
    the next (``figures[n : 2n - 1]``) into ``tally``."""
    for depth, users in enumerate(figures[:n], start=1):
        tally.depth[depth] += int(users)
    for k, gaps in enumerate(figures[n : 2 * n - 1], start=2):
        tally.deltas[k].extend(int(g) for g in gaps)


def _preference(chain: tuple[int, ...]) -> tuple[int, ...]:
    """Of two chains the one with the larger key is chosen: the deeper, then the later
    start, then the earlier later steps."""
    return (len(chain), chain[0], *(-t for t in chain[1:]))


def _decode_streams(
    plan: FunnelPlan, lookups: OrderLookups, rows: Sequence[Sequence[Any]]
) -> list[StreamUser]:
    """Rows of :func:`stream_statement` → the users' streams of :data:`StreamItem`."""
    if not _reads_values(plan):
        # Nothing but times and masks: the items are zipped, no Python call per item.
        return [
            (user_id, list(zip(times, steps, exclusions, repeat(_NO_VALUES), repeat(NO_HELD))))
            for user_id, times, steps, exclusions in rows
        ]
    decoder = StreamDecoder(plan, lookups)
    # Each distinct (value, is_order[, held values]) is decoded once; the items are zipped.
    value_sets = _Memo(lambda key: decoder.values(key[0], key[1]))
    held_sets = _Memo(lambda key: decoder.held(key[0], key[1], key[2:]))
    out: list[StreamUser] = []
    for user_id, times, steps, exclusions, values, orders, *held_columns in rows:
        item_values: Iterable[frozenset[str]] = (
            map(value_sets.__getitem__, zip(values, orders, strict=True))
            if plan.breakdown is not None
            else repeat(_NO_VALUES)
        )
        item_held: Iterable[frozenset[Held]] = (
            map(held_sets.__getitem__, zip(values, orders, *held_columns, strict=True))
            if plan.hold
            else repeat(NO_HELD)
        )
        # Not strict: an unread column is an endless repeat.
        items = zip(times, steps, exclusions, item_values, item_held, strict=False)
        out.append((user_id, list(items)))
    return out


class _Memo(dict[Any, Any]):
    """A dict that computes a missing key's value once."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self._compute(key)
        return value


def _reads_values(plan: FunnelPlan) -> bool:
    """Whether the items' values are read: a breakdown's or held dimensions'."""
    return plan.breakdown is not None or bool(plan.hold)


def _add_tied(acc: FunnelAccumulator, plan: FunnelPlan, rows: Sequence[Any]) -> None:
    """One user left to the engine, from their sorted rows ``[t, mask(, value)]`` (bit 0 of
    a mask only on in-range starts, values already the breakdown's)."""
    starts = [row for row in rows if row[1] == 1]
    later = [row for row in rows if row[1] > 1]
    packed = [(row[0] << MASK_BITS) | row[1] for row in later]
    if plan.breakdown is None:
        acc.add_split([row[0] for row in starts], packed)
    elif _multi(plan):
        _add_multi(
            acc,
            [(row[0], row[2]) for row in starts],
            [(x, row[2]) for x, row in zip(packed, later, strict=True)],
        )
    else:
        values = [row[2] for row in starts], [row[2] for row in later]
        acc.add_split([row[0] for row in starts], packed, *values)


def _add_multi(acc: FunnelAccumulator, starts: Sequence[Any], later: Sequence[Any]) -> None:
    """One user of a breakdown from an ``order`` first step, counted by the engine.

    Each row has a list of values (an order's, from its credits; none for an event). As the
    SQL source's multi-value breakdown: the user counts overall by the whole stream, and in
    value v's funnel by the stream where step 1 stays only on rows having v.
    """
    low = (1 << MASK_BITS) - 1
    rows = sorted(
        [(int(t), 1, frozenset(v)) for t, v in starts]
        + [(int(x) >> MASK_BITS, int(x) & low, frozenset(v)) for x, v in later],
        key=lambda e: e[0],
    )
    chain = acc.best_chain([(t, mask, None) for t, mask, _ in rows])
    if chain is None:
        return
    acc.tally().add(chain)
    lo, hi = acc.from_us, acc.to_us
    wanted = {v for t, mask, vs in rows if mask & 1 and lo <= t < hi for v in vs}
    for value in sorted(wanted):
        restricted = [(t, mask if value in vs else mask & ~1, None) for t, mask, vs in rows]
        found = acc.best_chain(restricted)
        if found is not None:
            acc.tally(value).add(found)


# --------------------------------------------------------------------------- statements


def _multi(plan: FunnelPlan) -> bool:
    """A breakdown from an ``order`` first step: a row's value is a list (an order has one
    value per last-touch credit), as the SQL source's ``order_breakdown_statement``."""
    return plan.breakdown is not None and plan.first_is_order


def _order_values(plan: FunnelPlan, values: Mapping[str, str] | None) -> str:
    """An order row's breakdown values (distinct, non-NULL) from its last-touch credits."""
    return _order_values_of(plan.breakdown or "", values)


def _order_values_of(key: str, values: Mapping[str, str] | None) -> str:
    """An order row's values of ``key`` (distinct, non-NULL): its lines' products, or its
    last-touch credits' values (``values``: content id → value of a catalog dimension)."""
    if key == "product_id":
        return "arrayDistinct(products)"
    if key in ("content_id", "ad_id"):
        column = "contents" if key == "content_id" else "ads"
        known = f"arrayFilter(c -> c IS NOT NULL, {column})"
        return f"arrayDistinct(arrayMap(c -> assumeNotNull(c), {known}))"
    if values:
        ids = "[" + ", ".join(quote(k) for k in values) + "]"
        mapped = "[" + ", ".join(quote(v) for v in values.values()) + "]"
        of_content = f"if(c IS NULL, '', transform(assumeNotNull(c), {ids}, {mapped}, ''))"
    else:
        of_content = "''"
    if key == "platform":
        each = (
            f"arrayMap((c, p) -> if(p IS NULL, {of_content}, assumeNotNull(p)),"
            " contents, touch_platforms)"
        )
    else:
        each = f"arrayMap(c -> {of_content}, contents)"
    return f"arrayDistinct(arrayFilter(v -> v != '', {each}))"


def _matches(filters: Mapping[str, str], contents: Mapping[tuple[str, str], list[str]]) -> str:
    """Conditions of ``filters`` on an event row, ANDed ("1" when there is none).

    NULL never equals a value: an event lacking the dimension does not match.
    """
    terms = []
    for key, value in filters.items():
        if key not in CONTENT_KEYS:
            terms.append(f"ifNull({key} = {quote(value)}, 0)")
        elif key == "platform":
            terms.append(_on_platform(value, contents[key, value], "platform", "content_id"))
        else:
            terms.append(f"ifNull(content_id IN {quote_list(contents[key, value])}, 0)")
    return " AND ".join(terms) if terms else "1"


def _on_platform(value: str, contents: Sequence[str], platform: str, content: str) -> str:
    """A row is on a platform by its own ``platform``, else by its content's account
    (``contents``: the tenant's contents on that platform)."""
    return (
        f"(ifNull({platform} = {quote(value)}, 0)"
        f" OR ({platform} IS NULL AND ifNull({content} IN {quote_list(contents)}, 0)))"
    )


def _value(plan: FunnelPlan, values: Mapping[str, str] | None = None) -> str:
    """The row's raw breakdown value: a column, or a content id to map (catalog values).

    With ``values`` (content id → value), a catalog value is mapped in the statement.
    """
    key = plan.breakdown
    if key is None:
        return "NULL"
    if key in CONTENT_KEYS and values is not None:
        return _catalog_value(key, values)
    if key == "platform":
        return f"coalesce(platform, concat({quote(CONTENT_MARK)}, content_id))"
    if key in CONTENT_KEYS:
        return "content_id"
    return key


def _catalog_value(key: str, values: Mapping[str, str]) -> str:
    """An event's value of a catalog dimension: its content's (``values``: content id →
    value), and for the platform its own first (as the SQL source's read-model join)."""
    ids = "[" + ", ".join(quote(k) for k in values) + "]"
    mapped = "[" + ", ".join(quote(v) for v in values.values()) + "]"
    of_content = (
        f"if(content_id IS NULL, NULL, "
        f"nullIf(transform(assumeNotNull(content_id), {ids}, {mapped}, ''), ''))"
    )
    return f"coalesce(platform, {of_content})" if key == "platform" else of_content


def _order_matches(
    filters: Mapping[str, str], contents: Mapping[tuple[str, str], list[str]]
) -> str:
    """Conditions of ``filters`` on an order row, ANDed ("1" when there is none).

    As the SQL source: ``product_id`` when one of its lines has it, the other keys when one
    of its last-touch credits does (``contents``, ``ads`` and ``touch_platforms`` are
    aligned, one element per credit; a credit's platform is its touch's, else that of its
    content's account).
    """
    terms = []
    for key, value in filters.items():
        if key == "product_id":
            terms.append(f"has(products, {quote(value)})")
        elif key == "content_id":
            terms.append(f"has(contents, {quote(value)})")
        elif key == "ad_id":
            terms.append(f"has(ads, {quote(value)})")
        elif key == "platform":
            on = _on_platform(value, contents[key, value], "p", "c")
            terms.append(f"arrayExists((c, p) -> {on}, contents, touch_platforms)")
        else:
            ids = quote_list(contents[key, value])
            terms.append(f"arrayExists(c -> ifNull(c IN {ids}, 0), contents)")
    return " AND ".join(terms) if terms else "1"


def _rows(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    values: Mapping[str, str] | None = None,
    catalog: Mapping[str, Mapping[str, str]] | None = None,
    value_lists: bool = False,
) -> str:
    """The tenant's rows in reach, each with ``ts``, ``mask``, ``value`` and ``start``.

    Events of the funnel's types, and with an ``order`` step the tenant's visible orders
    (paid, with a buyer): ``user_id`` is the buyer, ``ts`` the paid time, ``value`` NULL (a
    breakdown is by step 1's event). With ``catalog`` (held dimensions), a column ``held``:
    the row's tuples of held values (an event has one when it has every dimension, an order
    one per combination of its values, as the SQL source's). With ``value_lists``, every
    row's ``value`` is a list: an event's breakdown value (if any), an order's credits'.
    """
    parts = []
    held_events = held_orders = ""
    if catalog is not None:
        held_events = ", " + _held_tuples(
            [
                f"if(isNull({_held_column(key, catalog)}), CAST([], 'Array(String)'), "
                f"[assumeNotNull({_held_column(key, catalog)})])"
                for key in plan.hold
            ]
        )
        held_orders = ", " + _held_tuples(
            [_order_values_of(key, catalog.get(key)) for key in plan.hold]
        )
    until = plan.until
    if plan.event_types:
        steps = [
            "0"
            if s.type == ORDER_STEP
            else f"(type = {quote(s.type)} AND {_matches(s.filters, contents)})"
            for s in plan.steps
        ]
        mask = " + ".join(f"if({cond}, {1 << k}, 0)" for k, cond in enumerate(steps))
        time_bounds = f"t >= {instant_literal(plan.start)}" + (
            f" AND t < {instant_literal(until)}" if until is not None else ""
        )
        start = f"({steps[0]} AND t < {instant_literal(plan.end)})"
        parts.append(f"""
            SELECT user_id, toUnixTimestamp64Micro(t) AS ts, toUInt16({mask}) AS mask,
                {_event_value(plan, values, value_lists)} AS value,
                toUInt8({start}) AS start{held_events}
            FROM {{db}}.events FINAL
            WHERE tenant_id = {quote(plan.tenant_id)} AND type IN {quote_list(plan.event_types)}
                AND {time_bounds} AND {_matches(plan.filters, contents)}""")
    if plan.has_orders:
        steps = [
            f"({_order_matches(s.filters, contents)})" if s.type == ORDER_STEP else "0"
            for s in plan.steps
        ]
        mask = " + ".join(f"if({cond}, {1 << k}, 0)" for k, cond in enumerate(steps))
        paid = "assumeNotNull(paid_at)"
        time_bounds = f"{paid} >= {instant_literal(plan.start)}" + (
            f" AND {paid} < {instant_literal(until)}" if until is not None else ""
        )
        start = f"({steps[0]} AND {paid} < {instant_literal(plan.end)})"
        listed = _multi(plan) or value_lists
        value = _order_values(plan, values) if listed else "CAST(NULL, 'Nullable(String)')"
        # WHERE after FINAL: the newest copy of each order decides whether it is seen.
        parts.append(f"""
            SELECT assumeNotNull(buyer_id) AS user_id, toUnixTimestamp64Micro({paid}) AS ts,
                toUInt16({mask}) AS mask, {value} AS value,
                toUInt8({start}) AS start{held_orders}
            FROM {{db}}.orders FINAL
            WHERE tenant_id = {quote(plan.tenant_id)} AND visible = 1
                AND {time_bounds} AND {_order_matches(plan.filters, contents)}""")
    return "\n            UNION ALL".join(parts)


def _event_value(plan: FunnelPlan, values: Mapping[str, str] | None, listed: bool) -> str:
    """An event row's ``value`` (see :func:`_rows`)."""
    if listed:
        value = _value(plan, values)
        return f"if(isNull({value}), CAST([], 'Array(String)'), [assumeNotNull({value})])"
    return "CAST([], 'Array(String)')" if _multi(plan) else _value(plan, values)


def _held_tuples(arrays: Sequence[str]) -> str:
    """``held``: every tuple taking one value from each array (their cartesian product)."""
    names = [f"v{i}" for i in range(len(arrays))]
    inner = f"[tuple({', '.join(names)})]"
    for name, array in reversed(list(zip(names, arrays, strict=True))):
        inner = f"arrayFlatten(arrayMap({name} -> {inner}, {array}))"
    return f"{inner} AS held"


#: A user's rows that can take part in a chain: a later step's, or an in-range start.
_USEFUL = "(mask > 1 OR start)"


def _tied(n: int) -> str:
    """The users left to the engine: two of their rows share a time and one matches 2+ steps
    (over a user's useful rows: the statement keeps no others).

    Equal times may chain in any order. When each useful row matches one step, sorting a
    user's rows by ``(t, mask)`` puts every group of equal times in step order, which is the
    order the best chain takes them in, so the fold is exact. A row matching several steps
    in such a group needs the engine's matching of rows to steps.
    """
    mask = f"if(start, mask, bitAnd(mask, {((1 << n) - 1) ^ 1}))"
    return f"(uniqExact(ts) < count() AND max(bitCount({mask})) > 1)"


#: The empty chain time in :func:`_fold`'s state (no event is stamped with it).
_NO_TIME = "toInt64(-9223372036854775808)"


def _slot(level: int, j: int) -> int:
    """1-based index in :func:`_fold`'s state of time ``j`` of the best ``level``-chain."""
    return level * (level - 1) // 2 + j


def _fold(n: int, window_us: int, events: str) -> str:
    """The chosen chain of one user's ``events`` ``(t, mask)``, sorted by time then mask.

    The state is one flat tuple (no arrays: ClickHouse folds tuples of integers column by
    column): for each level k, the times of ``best[k]``, the key-minimal valid k-chain so far
    (:data:`_NO_TIME` while there is none; :func:`_slot` places them). An event matching step
    k+1 extends ``best[k]`` when within the window of its start, and replaces ``best[k+1]``
    only by a strictly later start (an equal start came earlier, with earlier times). Levels
    are updated from the old state, so an event matching two steps is never used twice in
    one chain. This is the engine's fast path; with rows sorted by ``(t, mask)`` it is exact
    for users outside :func:`_tied`.
    """
    new = {_slot(1, 1): f"if(bitTest(x.2, 0), x.1, acc.{_slot(1, 1)})"}
    for k in range(1, n):
        start, following = f"acc.{_slot(k, 1)}", f"acc.{_slot(k + 1, 1)}"
        extends = (
            f"(bitTest(x.2, {k}) AND {start} != {_NO_TIME} AND x.1 - {start} <= {window_us}"
            f" AND ({following} = {_NO_TIME} OR {start} > {following}))"
        )
        for j in range(1, k + 2):
            taken = f"acc.{_slot(k, j)}" if j <= k else "x.1"
            new[_slot(k + 1, j)] = f"if({extends}, {taken}, acc.{_slot(k + 1, j)})"
    state = ", ".join(new[i] for i in sorted(new))
    init = ", ".join(_NO_TIME for _ in new)
    return f"arrayFold((acc, x) -> tuple({state}), {events}, tuple({init}))"


def _depth(n: int, state: str = "f") -> str:
    """The deepest level of a folded ``state`` (0: no chain)."""
    return (
        "multiIf("
        + ", ".join(f"{state}.{_slot(k, 1)} != {_NO_TIME}, {k}" for k in range(n, 0, -1))
        + ", 0)"
    )


def _level_counts(n: int) -> tuple[str, str]:
    """The aggregates of a counting statement over folded users (``d``, ``f``, ``tied``):
    users per deepest level, and the chosen chains' gaps from each step to the next (the
    tied users are the engine's)."""
    depths = ", ".join(f"countIf(d = {k} AND NOT tied)" for k in range(1, n + 1))
    gaps = ", ".join(
        f"groupArrayIf({_chain_time(n, k + 1)} - {_chain_time(n, k)}, d > {k} AND NOT tied)"
        for k in range(1, n)
    )
    return depths, gaps


def _chain_time(n: int, j: int) -> str:
    """Time ``j`` of the chosen chain (the deepest level's) of a folded state ``f``."""
    return "multiIf(" + ", ".join(f"d = {k}, f.{_slot(k, j)}" for k in range(n, j - 1, -1)) + ", 0)"


def funnel_counts_statement(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    values: Mapping[str, str] | None = None,
) -> str:
    """Per funnel (``(0, '')`` overall, ``(1, v)`` breakdown value v): users per deepest
    level and each reached step's gaps from the chosen chains, then (overall only) the rows
    of the users left to the engine (:func:`_tied`), one scan for both.

    Each user's useful rows ``(t, mask[, value])`` are sorted by ``(t, mask)`` and folded
    (:func:`_fold`); bit 0 of a mask is kept on in-range starts only. For value ``v`` only the
    in-range starts having ``v`` keep step 1. A run of step-1-only events is folded as its
    last one: the fold keeps the latest start anyway. ``values`` maps content ids to the
    catalog values of a breakdown (see :func:`_value`); from an ``order`` first step a row's
    value is a list (:func:`_multi`).
    """
    n = len(plan.steps)
    not_start = ((1 << n) - 1) ^ 1
    depths, gaps = _level_counts(n)
    row = f"ts, if(start, mask, bitAnd(mask, {not_start}))"
    if plan.breakdown is None:
        row, funnels, events = f"({row})", "[(toUInt8(0), '')]", "evs"
    elif _multi(plan):
        # Each row has a list of values (an order's; an event's is empty).
        row = f"({row}, value)"
        funnels = (
            "arrayConcat([(toUInt8(0), '')], arrayMap(v -> (toUInt8(1), v), "
            "arrayDistinct(arrayFlatten(arrayMap(e -> e.3, "
            "arrayFilter(e -> bitTest(e.2, 0), evs))))))"
        )
        events = (
            f"arrayMap(e -> (e.1, if(g.1 = 0 OR has(e.3, g.2), e.2, bitAnd(e.2, {not_start}))),"
            " evs)"
        )
    else:
        row = f"({row}, value)"
        funnels = (
            "arrayConcat([(toUInt8(0), '')], arrayMap(v -> (toUInt8(1), v), "
            "arrayDistinct(arrayMap(e -> assumeNotNull(e.3), "
            "arrayFilter(e -> bitTest(e.2, 0) AND e.3 IS NOT NULL, evs)))))"
        )
        events = (
            f"arrayMap(e -> (e.1, if(g.1 = 0 OR e.3 = g.2, e.2, bitAnd(e.2, {not_start}))), evs)"
        )
    # Of consecutive events matching step 1 only, just the last can start a chain that
    # continues (a later start replaces an earlier one): the others are not folded. The
    # user's last event is always kept (a user of starts only reaches step 1). A tied
    # user's fold is not counted (the engine counts them).
    fold = _fold(n, plan.window_us, "pruned")
    return f"""
        SELECT g.1, g.2, {depths}, {gaps}, groupArrayIf(evs, tied AND g.1 = 0)
        FROM (
            SELECT g, tied, evs,
                arrayFilter(x -> x.2 > 0, {events}) AS useful,
                arrayFilter((x, following) -> x.2 > 1 OR following > 1, useful,
                    arrayPushBack(arrayPopFront(arrayMap(x -> x.2, useful)), 2)) AS pruned,
                {fold} AS f, {_depth(n)} AS d
            FROM (
                SELECT user_id, arraySort(groupArray({row})) AS evs, {_tied(n)} AS tied
                FROM ({_rows(plan, contents, values)}
                )
                WHERE {_USEFUL}
                GROUP BY user_id
                HAVING max(start) = 1
            )
            ARRAY JOIN {funnels} AS g
        )
        WHERE d > 0 OR (tied AND g.1 = 0)
        GROUP BY g
    """


def held_fold(plan: FunnelPlan) -> bool:
    """Whether ``plan`` is the plain ordered funnel with held dimensions, no breakdown:
    counted by :func:`held_counts_statement` instead of a walk per user."""
    return (
        bool(plan.hold)
        and plan.order == "ordered"
        and not plan.exclusions
        and not plan.optional_mask
        and plan.breakdown is None
    )


def held_counts_statement(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    catalog: Mapping[str, Mapping[str, str]],
) -> str:
    """A funnel with held dimensions (:func:`held_fold`): users per deepest level and each
    reached step's gaps, then the rows of the users left to the engine, in one row.

    Each tuple ``V`` of held values is its own funnel of the items having ``V``: a user's
    rows are grouped by ``(user, V)`` and each group folded as the plain funnel's
    (:func:`_fold`). A user's chain is the best of their groups': the deepest, then the latest
    start, then the earliest later steps (the modes' order of chains). A user with a group
    the fold cannot count exactly (:func:`_tied`) comes back as the best chain of their other
    groups (times, deepest level) and the tied groups' rows, for the engine.
    """
    n = len(plan.steps)
    not_start = ((1 << n) - 1) ^ 1
    times = ", ".join(_chain_time(n, j) for j in range(1, n + 1))
    order = ", ".join(["d", "c.1", *(f"-c.{j}" for j in range(2, n + 1))])
    best_times = ", ".join(f"best.{j}" for j in range(1, n + 1))
    kept = "NOT tied_user"
    depths = ", ".join(f"countIf(depth = {k} AND {kept})" for k in range(1, n + 1))
    gaps = ", ".join(
        f"groupArrayIf(best.{k + 1} - best.{k}, depth > {k} AND {kept})" for k in range(1, n)
    )
    fold = _fold(n, plan.window_us, "pruned")
    return f"""
        SELECT {depths}, {gaps},
            groupArrayIf(tuple(depth, [{best_times}], tied_groups), tied_user)
        FROM (
            SELECT user_id, max(tied) AS tied_user, max(if(tied, 0, d)) AS depth,
                argMaxIf(c, tuple({order}), NOT tied) AS best,
                groupArrayIf(evs, tied) AS tied_groups
            FROM (
                SELECT user_id, tied, evs, {fold} AS f, {_depth(n)} AS d,
                    tuple({times}) AS c,
                    arrayFilter((x, following) -> x.2 > 1 OR following > 1, evs,
                        arrayPushBack(arrayPopFront(arrayMap(x -> x.2, evs)), 2)) AS pruned
                FROM (
                    SELECT user_id, held,
                        arraySort(groupArray((ts, if(start, mask, bitAnd(mask, {not_start})))))
                            AS evs,
                        {_tied(n)} AS tied
                    FROM (
                        SELECT user_id, ts, mask, start, arrayJoin(held) AS held
                        FROM ({_rows(plan, contents, None, catalog)}
                        )
                    )
                    WHERE {_USEFUL}
                    GROUP BY user_id, held
                    HAVING max(start) = 1
                )
            )
            GROUP BY user_id
            HAVING depth > 0 OR tied_user
        )
    """


def last_step_fold(plan: FunnelPlan) -> bool:
    """Whether ``plan`` is the plain ordered funnel broken down by the value of each user's
    last step: counted by :func:`last_step_counts_statement`."""
    return (
        plan.breakdown is not None
        and plan.attribution == "last_step"
        and plan.order == "ordered"
        and not plan.exclusions
        and not plan.optional_mask
        and not plan.hold
    )


def last_step_counts_statement(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    values: Mapping[str, str] | None,
) -> str:
    """A breakdown by the last step reached (:func:`last_step_fold`): per funnel (``(0,
    '')`` overall, ``(1, v)`` value v) users per level and the chosen chains' gaps, then
    (overall only) the rows of the users left to the engine.

    Each user's rows are folded as the plain funnel's (:func:`_fold`), which gives their
    deepest level ``d``. Value v's funnel keeps step ``d`` only on the rows having v (an
    order has its credits' values): folded again, the user counts in it when it still
    reaches ``d``, with that chain. A tied user's values are all the engine's (the fold's
    ``d`` may be wrong for them).
    """
    n = len(plan.steps)
    not_start = ((1 << n) - 1) ^ 1
    depths, gaps = _level_counts(n)
    row = f"(ts, if(start, mask, bitAnd(mask, {not_start})), value)"
    restricted = (
        "arrayFilter(e -> e.2 > 0, arrayMap(e -> (e.1, if(g.1 = 0 OR has(e.3, g.2), e.2,"
        " bitAnd(e.2, bitNot(bitShiftLeft(toUInt16(1), d0 - 1))))), evs))"
    )
    pruned = (
        "arrayFilter((x, following) -> x.2 > 1 OR following > 1, useful,"
        " arrayPushBack(arrayPopFront(arrayMap(x -> x.2, useful)), 2))"
    )
    # A run of step-1-only rows folds as its last one (see funnel_counts_statement).
    overall = _fold(
        n,
        plan.window_us,
        "arrayFilter((x, following) -> x.2 > 1 OR following > 1, arrayMap(e -> (e.1, e.2), evs),"
        " arrayPushBack(arrayPopFront(arrayMap(e -> e.2, evs)), 2))",
    )
    fold = _fold(n, plan.window_us, "pruned")
    return f"""
        SELECT g.1, g.2, {depths}, {gaps}, groupArrayIf(evs, tied AND g.1 = 0)
        FROM (
            SELECT g, tied, evs, d0, {restricted} AS useful, {pruned} AS pruned,
                {fold} AS f, {_depth(n)} AS d
            FROM (
                SELECT evs, tied, {_depth(n, "f0")} AS d0
                FROM (
                    SELECT user_id, arraySort(groupArray({row})) AS evs, {_tied(n)} AS tied,
                        {overall} AS f0
                    FROM ({_rows(plan, contents, values, value_lists=True)}
                    )
                    WHERE {_USEFUL}
                    GROUP BY user_id
                    HAVING max(start) = 1
                )
            )
            ARRAY JOIN arrayConcat([(toUInt8(0), '')], arrayMap(v -> (toUInt8(1), v),
                arrayDistinct(arrayFlatten(arrayMap(e -> e.3,
                    arrayFilter(e -> bitTest(e.2, d0 - 1), evs)))))) AS g
        )
        WHERE (d > 0 AND NOT tied AND (g.1 = 0 OR d >= d0)) OR (tied AND g.1 = 0)
        GROUP BY g
    """


# --------------------------------------------------------------------------- user streams


def _mask_of(conditions: Sequence[str | None]) -> str:
    """The bitmask of a row: bit ``k`` when ``conditions[k]`` holds (None: never)."""
    terms = [f"if({c}, {1 << k}, 0)" for k, c in enumerate(conditions) if c is not None]
    return "toUInt64(" + (" + ".join(terms) if terms else "0") + ")"


def _held_column(key: str, catalog: Mapping[str, Mapping[str, str]]) -> str:
    """An event's value of a held dimension (an order's are looked up by its id)."""
    if key in CONTENT_KEYS:
        return _catalog_value(key, catalog.get(key, {}))
    return key


def stream_statement(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    catalog: Mapping[str, Mapping[str, str]],
    least_level: int = 1,
) -> str:
    """Each user's stream, as the SQL source's ``stream_rows_statement`` defines it: one row
    per user able to start a chain, ``(user_id, times, step masks, exclusion masks)`` and,
    with a breakdown or held dimensions, ``(…, values, is_order, *held)``: arrays, one
    element per item, the items ordered by time, then id, then events before orders.

    A step mask has bit ``k`` for step ``k + 1``, an exclusion mask bit ``i`` for exclusion
    ``i``; a value is an event's breakdown value or an order's id; ``held`` an event's
    values of the held dimensions. A strict funnel reads every item of the user, the other
    modes the items matching a bit. ``catalog`` maps content ids to the values of the
    catalog dimensions used (account, content kind, platform). String ids are compared as
    bytes, which for UTF-8 is the code points' order, Python's (the SQL source sorts in
    Python).

    Users unable to reach ``least_level`` steps are left out: an ordered or strict chain
    needs an item of each required step it passes, an unordered one as many different
    steps as its level.
    """
    n = len(plan.steps)
    can_start = (1 << n) - 1 if plan.order == "unordered" else 1
    held_names = "".join(f", h{i}" for i in range(len(plan.hold)))
    # Column by column: a user's times, step masks, exclusion masks (then values, whether
    # each item is an order, held values), which the service decodes far faster than tuples.
    columns = [
        "arrayMap(x -> x.1, s)",
        f"arrayMap(x -> bitAnd(x.4, {(1 << n) - 1}), s)",
        f"arrayMap(x -> bitShiftRight(x.4, {n}), s)",
    ]
    if _reads_values(plan):
        columns += ["arrayMap(x -> x.5, s)", "arrayMap(x -> x.3, s)"]
        columns += [f"arrayMap(x -> x.{6 + i}, s)" for i in range(len(plan.hold))]
    having = [f"countIf(bitAnd(mask, {can_start}) != 0 AND ts < {micros(plan.end)}) > 0"]
    if plan.order == "unordered":
        if least_level > 1:
            having.append(f"bitCount(bitAnd(groupBitOr(mask), {(1 << n) - 1})) >= {least_level}")
    elif (needed := plan.needed_steps(least_level)) & ~1:
        having.append(f"bitAnd(groupBitOr(mask), {needed}) = {needed}")
    return f"""
        SELECT user_id, {", ".join(columns)}
        FROM (
            SELECT user_id,
                arraySort(groupArray((ts, item_id, is_order, mask, value{held_names}))) AS s
            FROM ({_stream_items(plan, contents, catalog)}
            )
            GROUP BY user_id
            HAVING {" AND ".join(having)}
        )
    """


def entered_statement(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    catalog: Mapping[str, Mapping[str, str]],
    bounds: Sequence[tuple[int, int]],
) -> str:
    """``(period index, users)`` for each period ``[lo, hi)`` (µs, ascending) that users
    enter, as :class:`~services.attribution.funnels.modes.TrendAccumulator` counts them: an
    item able to start a chain (with held dimensions: an event having them all) in the
    period and in the range. Orders' held values are not here: with held dimensions, an
    order must not be able to start (:func:`orders_may_enter`)."""
    n = len(plan.steps)
    can_start = (1 << n) - 1 if plan.order == "unordered" else 1
    starts = "[" + ", ".join(str(lo) for lo, _ in bounds) + "]"
    ends = "[" + ", ".join(str(hi) for _, hi in bounds) + "]"
    held = "".join(f" AND h{i} IS NOT NULL" for i in range(len(plan.hold)))
    return f"""
        SELECT p, uniqExact(user_id)
        FROM (
            SELECT user_id, ts, arrayCount(s -> s <= ts, {starts}) AS p
            FROM ({_stream_items(plan, contents, catalog)}
            )
            WHERE bitAnd(mask, {can_start}) != 0 AND ts < {micros(plan.end)}{held}
        )
        WHERE p > 0 AND ts < arrayElement({ends}, p)
        GROUP BY p
    """


def orders_may_enter(plan: FunnelPlan) -> bool:
    """Whether an order can start one of ``plan``'s chains."""
    if plan.order == "unordered":
        return plan.has_orders
    return plan.first_is_order


def _stream_items(
    plan: FunnelPlan,
    contents: Mapping[tuple[str, str], list[str]],
    catalog: Mapping[str, Mapping[str, str]],
) -> str:
    """The items of the users' streams, ``(user_id, ts, item_id, mask, value, is_order,
    *held)``, each item at or after the range's start and before its ``until``."""
    steps = plan.stream_steps
    strict = plan.order == "strict"
    tenant = quote(plan.tenant_id)
    start, until = plan.start, plan.until
    nulls = "".join(f", CAST(NULL, 'Nullable(String)') AS h{i}" for i in range(len(plan.hold)))
    parts = []
    event_types = sorted({s.type for s in steps if s.type != ORDER_STEP})
    if strict or event_types:
        every = _matches(plan.filters, contents)
        conditions = [
            None
            if s.type == ORDER_STEP
            else f"(type = {quote(s.type)} AND {every} AND {_matches(s.filters, contents)})"
            for s in steps
        ]
        where = [
            f"tenant_id = {tenant}",
            f"t >= {instant_literal(start)}",
            *([] if until is None else [f"t < {instant_literal(until)}"]),
        ]
        if not strict:
            where.append("(" + " OR ".join(c for c in conditions if c is not None) + ")")
        value = _value(plan, catalog.get(plan.breakdown or "")) if plan.breakdown else "NULL"
        held = "".join(
            f", CAST({_held_column(key, catalog)}, 'Nullable(String)') AS h{i}"
            for i, key in enumerate(plan.hold)
        )
        parts.append(f"""
            SELECT user_id, toUnixTimestamp64Micro(t) AS ts, event_id AS item_id,
                {_mask_of(conditions)} AS mask, CAST({value}, 'Nullable(String)') AS value,
                toUInt8(0) AS is_order{held}
            FROM {{db}}.events FINAL
            WHERE {" AND ".join(where)}""")
    if strict or any(s.type == ORDER_STEP for s in steps):
        every = _order_matches(plan.filters, contents)
        conditions = [
            f"({every} AND {_order_matches(s.filters, contents)})" if s.type == ORDER_STEP else None
            for s in steps
        ]
        paid = "assumeNotNull(paid_at)"
        where = [
            f"tenant_id = {tenant}",
            "visible = 1",
            f"{paid} >= {instant_literal(start)}",
            *([] if until is None else [f"{paid} < {instant_literal(until)}"]),
        ]
        if not strict:
            where.append("(" + " OR ".join(c for c in conditions if c is not None) + ")")
        # WHERE after FINAL: the newest copy of each order decides whether it is seen.
        parts.append(f"""
            SELECT assumeNotNull(buyer_id) AS user_id, toUnixTimestamp64Micro({paid}) AS ts,
                order_id AS item_id, {_mask_of(conditions)} AS mask,
                CAST(order_id, 'Nullable(String)') AS value, toUInt8(1) AS is_order{nulls}
            FROM {{db}}.orders FINAL
            WHERE {" AND ".join(where)}""")
    return "\n            UNION ALL".join(parts)
