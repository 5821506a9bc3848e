"""Report queries: every aggregation runs in SQL; this module returns plain sums.

Dialect notes:

- ``UTCDateTime`` is ``timestamptz`` on PostgreSQL and integer epoch microseconds on SQLite.
  Range filters compare bound datetimes (the type converts them); slot arithmetic for time
  series is written per dialect.
- ``MoneyType`` is ``NUMERIC`` on PostgreSQL, where ``SUM`` is exact. On SQLite it is decimal
  text, whose ``SUM`` would go through binary floats, so there each amount is parsed from its
  text into integer ten-thousandths (MoneyType keeps at most 4 places) and those integers are
  summed: still exact, still one row per group (see ``grouped_money``).
- Money read back skips ``MoneyType``'s per-row normalisation (it dominated the run time);
  the service rounds every figure to the currency's minor unit anyway.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Numeric,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.attribution.events.repository import events_in
from services.attribution.events.rollup import DAY_US
from services.attribution.models import (
    CatalogAccount,
    CatalogAd,
    CatalogAdSpend,
    CatalogCampaign,
    CatalogContent,
    CatalogProduct,
    Credit,
    Event,
    EventDaily,
)
from services.attribution.models.catalog import CatalogObject
from services.attribution.reports.viewers import ViewerCounter
from shared.db import from_epoch_us, to_epoch_us
from shared.vocabulary import WATCH_TYPES, AdFormat, ContentKind

ZERO = Decimal(0)
Expr = ColumnElement[Any] | QueryableAttribute[Any]


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def begin_snapshot(session: AsyncSession) -> None:
    """Run the report's queries in one read-only snapshot on PostgreSQL.

    Several queries make one report; REPEATABLE READ makes them see the same data. (On
    SQLite one transaction already reads one snapshot.) Call it before the session's first
    query; once a transaction is open this does nothing.
    """
    if dialect_of(session) == "postgresql" and not session.in_transaction():
        await session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )


# --- catalog read model ----------------------------------------------------------------------


def catalog_row(target: type[CatalogObject], tenant_id: Expr, key: Expr) -> ColumnElement[bool]:
    """The join condition to ``target``'s catalog row whose id is ``key``, in the tenant
    ``tenant_id`` of the row that holds the key (catalog ids are unique per tenant only)."""
    return and_(target.tenant_id == tenant_id, target.id == key)


@dataclass(frozen=True, slots=True)
class AdInfo:
    campaign_id: str
    content_id: str
    format: AdFormat
    name: str | None = None
    campaign_name: str | None = None
    content_title: str | None = None
    product_id: str | None = None
    product_title: str | None = None


@dataclass(frozen=True, slots=True)
class ContentInfo:
    kind: ContentKind
    account_id: str
    platform: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    title: str | None = None
    account_handle: str | None = None


def campaign_ads(tenant_id: str, campaign_id: str) -> Select[tuple[str]]:
    return select(CatalogAd.id).where(
        CatalogAd.tenant_id == tenant_id, CatalogAd.campaign_id == campaign_id
    )


def matching_contents(
    tenant_id: str, *, kind: str | None, platform: str | None, account_id: str | None
) -> Select[tuple[str]] | None:
    """Ids of the contents the filters select, or None when there is no filter."""
    if kind is None and platform is None and account_id is None:
        return None
    query = select(CatalogContent.id).where(CatalogContent.tenant_id == tenant_id)
    if kind is not None:
        query = query.where(CatalogContent.kind == kind)
    if account_id is not None:
        query = query.where(CatalogContent.account_id == account_id)
    if platform is not None:
        query = query.join(
            CatalogAccount,
            catalog_row(CatalogAccount, CatalogContent.tenant_id, CatalogContent.account_id),
        ).where(CatalogAccount.platform == platform)
    return query


async def ads_catalog(
    session: AsyncSession, tenant_id: str, campaign_id: str | None
) -> dict[str, AdInfo]:
    """The tenant's ads with their names: the ad's, its campaign's, its content's title and
    its product's title (null where the read model has none yet)."""
    query = (
        select(
            CatalogAd.id,
            CatalogAd.campaign_id,
            CatalogAd.content_id,
            CatalogAd.format,
            CatalogAd.name,
            CatalogCampaign.name,
            CatalogContent.title,
            CatalogAd.product_id,
            CatalogProduct.title,
        )
        .outerjoin(
            CatalogCampaign,
            catalog_row(CatalogCampaign, CatalogAd.tenant_id, CatalogAd.campaign_id),
        )
        .outerjoin(
            CatalogContent,
            catalog_row(CatalogContent, CatalogAd.tenant_id, CatalogAd.content_id),
        )
        .outerjoin(
            CatalogProduct,
            catalog_row(CatalogProduct, CatalogAd.tenant_id, CatalogAd.product_id),
        )
        .where(CatalogAd.tenant_id == tenant_id)
    )
    if campaign_id is not None:
        query = query.where(CatalogAd.campaign_id == campaign_id)
    rows = await session.execute(query)
    return {row[0]: AdInfo(*row[1:]) for row in rows}


async def contents_catalog(
    session: AsyncSession, tenant_id: str, ids: Select[tuple[str]] | None
) -> dict[str, ContentInfo]:
    query = (
        select(
            CatalogContent.id,
            CatalogContent.kind,
            CatalogContent.account_id,
            CatalogAccount.platform,
            CatalogContent.started_at,
            CatalogContent.ended_at,
            CatalogContent.title,
            CatalogAccount.handle,
        )
        .outerjoin(
            CatalogAccount,
            catalog_row(CatalogAccount, CatalogContent.tenant_id, CatalogContent.account_id),
        )
        .where(CatalogContent.tenant_id == tenant_id)
    )
    if ids is not None:
        query = query.where(CatalogContent.id.in_(ids))
    rows = await session.execute(query)
    return {row[0]: ContentInfo(*row[1:]) for row in rows}


def while_live(room: type[CatalogContent], at: Expr) -> ColumnElement[bool]:
    """``at`` lies while the content ``room`` (the table or an alias) was live: a live room
    that had started, from ``started_at`` to ``ended_at`` inclusive (open-ended while
    ``ended_at`` is unknown)."""
    return and_(
        room.kind == "live",
        room.started_at.is_not(None),
        at >= room.started_at,
        (room.ended_at.is_(None)) | (at <= room.ended_at),
    )


# --- events ---------------------------------------------------------------------------------


@dataclass(slots=True)
class EventSums:
    counts: dict[str, int] = field(default_factory=dict)  # by event type
    watch_seconds: float = 0.0
    watch_events: int = 0
    unique_viewers: int = 0


def _watch_seconds(dialect: str) -> ColumnElement[Any]:
    """``properties.watch_seconds`` when it is a JSON number (else NULL)."""
    if dialect == "postgresql":
        return literal_column(
            "CASE WHEN jsonb_typeof(events.properties -> 'watch_seconds') = 'number' "
            "THEN (events.properties ->> 'watch_seconds')::float8 END"
        )
    return literal_column(
        "CASE WHEN json_type(events.properties, '$.watch_seconds') IN ('integer', 'real') "
        "THEN json_extract(events.properties, '$.watch_seconds') END"
    )


def whole_days(start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The UTC days lying wholly in ``[start, end)``, as ``[first, last)``; None if none."""
    first_us = -(-to_epoch_us(start) // DAY_US) * DAY_US  # ceiling
    last_us = to_epoch_us(end) // DAY_US * DAY_US
    if first_us >= last_us:
        return None
    return from_epoch_us(first_us), from_epoch_us(last_us)


async def event_sums(
    session: AsyncSession,
    tenant_id: str,
    *,
    key: str,
    start: dt.datetime,
    end: dt.datetime,
    types: Sequence[str],
    only: Select[tuple[str]] | None = None,
    watch: bool = False,
    viewers: ViewerCounter | None = None,
) -> dict[str, EventSums]:
    """Per ``key`` (``ad_id`` or ``content_id``): event counts by type in ``[start, end)``.

    ``watch`` adds Σ/count of ``properties.watch_seconds`` over view/view_complete events;
    ``viewers`` adds the distinct ``user_id``s among ``view`` events, as it counts them.

    Counts and watch time of the whole UTC days in the range come from ``event_daily``
    (kept by ingest); only the partial days at the edges are counted from ``events``.
    Distinct viewers do not add up across days, so they always come from ``events``.
    """
    column: Any = getattr(Event, key)

    def where(
        event_types: Sequence[str], lo: dt.datetime, hi: dt.datetime
    ) -> list[ColumnElement[bool]]:
        conditions = [*events_in(tenant_id, event_types, lo, hi), column.is_not(None)]
        if only is not None:
            conditions.append(column.in_(only))
        return conditions

    result: dict[str, EventSums] = defaultdict(EventSums)
    watched = sorted(t for t in WATCH_TYPES if t in types) if watch else []
    days = whole_days(start, end)
    edges = [(start, end)] if days is None else [(start, days[0]), (days[1], end)]
    for lo, hi in edges:
        if lo >= hi:
            continue
        counts = select(column, Event.type, func.count()).where(*where(types, lo, hi))
        for key_value, event_type, count in await session.execute(
            counts.group_by(column, Event.type)
        ):
            per_type = result[key_value].counts
            per_type[event_type] = per_type.get(event_type, 0) + int(count)
        # A separate query on purpose: the counts above need only indexable columns (an
        # index-only scan with a covering index); the watch time has to read the JSON of
        # view events only.
        if watched:
            seconds = _watch_seconds(dialect_of(session))
            query = (
                select(column, func.sum(seconds), func.count(seconds))
                .where(*where(watched, lo, hi), Event.properties.is_not(None))
                .group_by(column)
            )
            for key_value, total, count in await session.execute(query):
                if count:
                    result[key_value].watch_seconds += float(total)
                    result[key_value].watch_events += int(count)
    if days is not None:
        await _add_daily_sums(session, tenant_id, result, key, days, types, watched, only)
    if viewers is not None and "view" in types:
        kept = None if only is None else set((await session.execute(only)).scalars())
        for key_value, count in (await viewers.unique_viewers(tenant_id, key, start, end)).items():
            if kept is None or key_value in kept:
                result[key_value].unique_viewers = count
    return dict(result)


async def _add_daily_sums(
    session: AsyncSession,
    tenant_id: str,
    result: dict[str, EventSums],
    key: str,
    days: tuple[dt.datetime, dt.datetime],
    types: Sequence[str],
    watched: Sequence[str],
    only: Select[tuple[str]] | None,
) -> None:
    """Add ``event_daily``'s counts (and watch time of ``watched`` types) over ``days``."""
    column: Any = getattr(EventDaily, key)
    conditions = [
        EventDaily.tenant_id == tenant_id,
        EventDaily.day >= days[0],
        EventDaily.day < days[1],
        EventDaily.type.in_(list(types)),
        column != "",  # no content (or ad)
    ]
    if only is not None:
        conditions.append(column.in_(only))
    query = (
        select(
            column,
            EventDaily.type,
            func.sum(EventDaily.events),
            func.sum(EventDaily.watch_seconds),
            func.sum(EventDaily.watch_events),
        )
        .where(*conditions)
        .group_by(column, EventDaily.type)
    )
    for key_value, event_type, count, seconds, watch_events in await session.execute(query):
        sums = result[key_value]
        sums.counts[event_type] = sums.counts.get(event_type, 0) + int(count)
        if event_type in watched and watch_events:
            sums.watch_seconds += float(seconds)
            sums.watch_events += int(watch_events)


# --- money sums ---------------------------------------------------------------------------------


@dataclass(slots=True)
class MoneySums:
    amount: Decimal = ZERO
    share: float = 0.0
    rows: int = 0


SCALE = 10_000  # MoneyType keeps at most 4 decimal places


def _sqlite_units(amount: Expr) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """SQLite: a decimal-text amount as exact integer 1/10000ths, and its decimal places.

    Parsed from the text ("-12.5" → -125000), never through a float; the places let the
    caller check that nothing finer than 4 places (or an exponent) was stored.
    """
    text = type_coerce(amount, String)
    dot = func.instr(text, ".")
    fraction = cast(func.substr(func.substr(text, dot + 1) + "0000", 1, 4), Integer)
    units = case(
        (dot == 0, cast(text, Integer) * SCALE),
        else_=cast(func.substr(text, 1, dot - 1), Integer) * SCALE
        + case((func.substr(text, 1, 1) == "-", -fraction), else_=fraction),
    )
    places = case(
        (func.instr(func.upper(text), "E") > 0, 99),
        (dot == 0, 0),
        else_=func.length(text) - dot,
    )
    return units, places


async def grouped_money(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[Expr],
    amount: Expr,
    share: Expr | None = None,
) -> dict[tuple[Hashable, ...], MoneySums]:
    """Σ ``amount`` (exact), Σ ``share`` and the row count per ``keys`` of ``query``.

    ``query`` is a ``select()`` carrying FROM and WHERE only; columns are added here. The
    amounts are summed in SQL on both databases: ``NUMERIC`` on PostgreSQL, exact integer
    ten-thousandths parsed from the decimal text on SQLite. Should SQLite ever hold an amount
    with more than 4 places, the rows are grouped by amount and summed here instead.
    """
    sqlite = dialect_of(session) != "postgresql"
    columns: list[Any] = [*keys]
    if sqlite:
        units, places = _sqlite_units(amount)
        columns += [func.sum(units), func.count(), func.max(places)]
    else:
        columns += [type_coerce(func.sum(amount), Numeric(38, 4)), func.count(), literal(0)]
    if share is not None:
        columns.append(func.sum(share))
    rows = (await session.execute(query.with_only_columns(*columns).group_by(*keys))).all()
    width = len(keys)
    if sqlite and any((row[width + 2] or 0) > 4 for row in rows):
        return await _grouped_money_by_amount(session, query, keys, amount, share)
    result: dict[tuple[Hashable, ...], MoneySums] = {}
    for row in rows:
        total = row[width]
        if total is None:
            value = ZERO
        elif sqlite:
            value = Decimal(int(total)).scaleb(-4)
        else:
            value = Decimal(total)
        shared = float(row[width + 3] or 0.0) if share is not None else 0.0
        result[tuple(row[:width])] = MoneySums(value, shared, int(row[width + 1]))
    return result


async def _grouped_money_by_amount(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[Expr],
    amount: Expr,
    share: Expr | None,
) -> dict[tuple[Hashable, ...], MoneySums]:
    """The slow exact path: one row per (keys, distinct amount text), summed with Decimal."""
    text = type_coerce(amount, String)
    columns: list[Any] = [*keys, text, func.count()]
    if share is not None:
        columns.append(func.sum(share))
    rows = await session.execute(query.with_only_columns(*columns).group_by(*keys, text))
    width = len(keys)
    amounts: dict[tuple[Hashable, ...], Decimal] = defaultdict(lambda: ZERO)
    counts: dict[tuple[Hashable, ...], int] = defaultdict(int)
    shares: dict[tuple[Hashable, ...], list[float]] = defaultdict(list)
    for row in rows:
        key = tuple(row[:width])
        count = int(row[width + 1])
        if row[width] is not None:
            amounts[key] += Decimal(row[width]) * count
        counts[key] += count
        if share is not None and row[width + 2] is not None:
            shares[key].append(float(row[width + 2]))
    return {key: MoneySums(amounts[key], math.fsum(shares[key]), counts[key]) for key in counts}


@dataclass(frozen=True, slots=True)
class CreditRange:
    """The credits a report reads: one tenant's, under one model, of orders paid in
    ``[start, end)``."""

    tenant_id: str
    model: str
    start: dt.datetime
    end: dt.datetime

    def where(
        self, key: Expr | None = None, only: Select[tuple[str]] | None = None
    ) -> list[ColumnElement[bool]]:
        """The conditions; with ``key``, only credits with one (and in ``only``, if given)."""
        conditions = [
            Credit.tenant_id == self.tenant_id,
            Credit.model == self.model,
            Credit.paid_at >= self.start,
            Credit.paid_at < self.end,
        ]
        if key is not None:
            conditions.append(key.is_not(None))
            if only is not None:
                conditions.append(key.in_(only))
        return conditions


async def ad_credits(
    session: AsyncSession, credits: CreditRange, only: Select[tuple[str]] | None
) -> dict[str, MoneySums]:
    """Per ad: Σ credited amount and Σ order_share."""
    sums = await grouped_money(
        session,
        select(Credit.ad_id).where(*credits.where(Credit.ad_id, only)),
        [Credit.ad_id],
        Credit.amount,
        Credit.order_share,
    )
    return {str(key[0]): value for key, value in sums.items()}


@dataclass(frozen=True, slots=True)
class ContentCredit:
    total: MoneySums
    direct: Decimal  # the part paid while a live room was live (direct GMV)


async def content_credits(
    session: AsyncSession, credits: CreditRange, only: Select[tuple[str]] | None
) -> dict[str, ContentCredit]:
    """Per content: its credit sums and the part paid while it was live (direct GMV).

    A live room is live from ``started_at`` to ``ended_at`` inclusive (open-ended while
    ``ended_at`` is unknown); videos, and rooms that never started, have no direct GMV.
    """
    direct = case((while_live(CatalogContent, Credit.paid_at), 1), else_=0).label("direct")
    query = (
        select(Credit.content_id)
        .select_from(Credit)
        .outerjoin(
            CatalogContent,
            catalog_row(CatalogContent, Credit.tenant_id, Credit.content_id),
        )
        .where(*credits.where(Credit.content_id, only))
    )
    sums = await grouped_money(
        session, query, [Credit.content_id, direct], Credit.amount, Credit.order_share
    )
    result: dict[str, ContentCredit] = {}
    for (content_id, is_direct), value in sums.items():
        seen = result.get(str(content_id))
        total = seen.total if seen else MoneySums()
        result[str(content_id)] = ContentCredit(
            MoneySums(
                total.amount + value.amount, total.share + value.share, total.rows + value.rows
            ),
            (seen.direct if seen else ZERO) + (value.amount if is_direct else ZERO),
        )
    return result


async def ad_spend(
    session: AsyncSession,
    tenant_id: str,
    *,
    first_day: dt.date,
    last_day: dt.date,
    only: Select[tuple[str]] | None,
) -> dict[tuple[str, str], MoneySums]:
    """Per (ad, currency): Σ spend over the local days ``first_day``…``last_day``."""
    where = [
        CatalogAdSpend.tenant_id == tenant_id,
        CatalogAdSpend.day >= first_day,
        CatalogAdSpend.day <= last_day,
    ]
    if only is not None:
        where.append(CatalogAdSpend.ad_id.in_(only))
    sums = await grouped_money(
        session,
        select(CatalogAdSpend.ad_id).where(*where),
        [CatalogAdSpend.ad_id, CatalogAdSpend.currency],
        CatalogAdSpend.amount,
    )
    return {(str(ad), str(currency)): value for (ad, currency), value in sums.items()}


# --- time series --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slots:
    """How a time series groups rows: UTC slots of ``slot_seconds`` counted from ``origin``,
    of one content and/or ad when given."""

    origin: dt.datetime
    slot_seconds: int
    content_id: str | None
    ad_id: str | None

    def slot(self, dialect: str, column: str) -> Any:
        """The slot number of ``column`` (both ints, inlined)."""
        if dialect == "postgresql":
            origin_seconds = to_epoch_us(self.origin) // 1_000_000
            return literal_column(
                f"CAST(floor((extract(epoch FROM {column}) - {origin_seconds}) / "
                f"{self.slot_seconds}) AS BIGINT)"
            ).label("slot")
        # Epoch microseconds; never below origin inside the range, so integer division floors.
        return literal_column(
            f"(({column} - {to_epoch_us(self.origin)}) / {self.slot_seconds * 1_000_000})"
        ).label("slot")

    def narrow(self, query: Select[Any], content: Expr, ad: Expr) -> Select[Any]:
        """``query`` limited to the content and ad asked for."""
        if self.content_id is not None:
            query = query.where(content == self.content_id)
        if self.ad_id is not None:
            query = query.where(ad == self.ad_id)
        return query


async def event_series(
    session: AsyncSession,
    tenant_id: str,
    slots: Slots,
    *,
    event_type: str,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[int, int]:
    """Events of one type in ``[start, end)`` per slot."""
    slot = slots.slot(dialect_of(session), "events.occurred_at")
    query = select(slot, func.count()).where(*events_in(tenant_id, [event_type], start, end))
    query = slots.narrow(query, Event.content_id, Event.ad_id)
    rows = await session.execute(query.group_by(literal_column("slot")))
    return {int(number): int(count) for number, count in rows}


async def credit_series(
    session: AsyncSession, credits: CreditRange, slots: Slots
) -> dict[int, MoneySums]:
    """Σ credited amount and Σ order_share per slot (by paid time)."""
    slot = slots.slot(dialect_of(session), "credits.paid_at")
    query = slots.narrow(
        select(Credit.order_id).where(*credits.where()), Credit.content_id, Credit.ad_id
    )
    sums = await grouped_money(session, query, [slot], Credit.amount, Credit.order_share)
    return {int(str(key[0])): value for key, value in sums.items()}
