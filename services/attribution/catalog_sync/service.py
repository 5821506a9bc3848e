"""Keeping the local read model of the catalog current by pulling the change feed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.core.metrics import CATALOG_SYNC_LAG
from services.attribution.models import (
    Base,
    CatalogAccount,
    CatalogAd,
    CatalogAdSpend,
    CatalogCampaign,
    CatalogContent,
    CatalogContentProduct,
    CatalogProduct,
    CatalogTrackingLink,
    SyncState,
)
from shared.auth import ALL_TENANTS, mint_token
from shared.db import insert_for, utcnow
from shared.errors import ServiceUnavailable

log = logging.getLogger("clipfunnel.catalog_sync")
STATE_KEY = "catalog"
PAGE_SIZE = 1000


def _dt(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class Projection:
    """How one feed entity lands in one read-model table."""

    model: type[Base]
    key: tuple[str, ...]  # read-model columns of the key, taken from data
    columns: dict[str, Any] = field(default_factory=dict)  # column -> converter(data)


def _pick(name: str, convert: Any = None) -> Any:
    def get(data: dict[str, Any]) -> Any:
        value = data.get(name)
        return convert(value) if convert is not None and value is not None else value

    return get


PROJECTIONS: dict[str, Projection] = {
    "account": Projection(
        CatalogAccount,
        ("id",),
        {
            "platform": _pick("platform"),
            "handle": _pick("handle"),
            "display_name": _pick("display_name"),
        },
    ),
    "content": Projection(
        CatalogContent,
        ("id",),
        {
            "kind": _pick("kind"),
            "account_id": _pick("account_id"),
            "title": _pick("title"),
            "published_at": _pick("published_at", _dt),
            "started_at": _pick("started_at", _dt),
            "ended_at": _pick("ended_at", _dt),
            "duration_seconds": _pick("duration_seconds"),
            "topics": _pick("topics"),
            "format": _pick("format"),
        },
    ),
    "product": Projection(
        CatalogProduct,
        ("id",),
        {
            "title": _pick("title"),
            "price": _pick("price", Decimal),
            "currency": _pick("currency"),
            "category": _pick("category"),
        },
    ),
    "content_product": Projection(
        CatalogContentProduct,
        ("content_id", "product_id"),
        {
            "placement": _pick("placement"),
            "starts_at": _pick("starts_at", _dt),
            "ends_at": _pick("ends_at", _dt),
        },
    ),
    "campaign": Projection(CatalogCampaign, ("id",), {"name": _pick("name")}),
    "ad": Projection(
        CatalogAd,
        ("id",),
        {
            "campaign_id": _pick("campaign_id"),
            "content_id": _pick("content_id"),
            "product_id": _pick("product_id"),
            "format": _pick("format"),
            "name": _pick("name"),
        },
    ),
    "ad_spend": Projection(
        CatalogAdSpend,
        ("ad_id", "day"),
        {"amount": _pick("amount", Decimal), "currency": _pick("currency")},
    ),
    "tracking_link": Projection(
        CatalogTrackingLink,
        ("code",),
        {
            "content_id": _pick("content_id"),
            "product_id": _pick("product_id"),
            "ad_id": _pick("ad_id"),
            "destination_url": _pick("destination_url"),
        },
    ),
}


def _key_values(projection: Projection, entity: str, change: dict[str, Any]) -> dict[str, Any]:
    data = change.get("data") or {}
    if entity == "tracking_link":
        return {"code": data.get("id") or change["id"]}
    values: dict[str, Any] = {}
    parts = str(change["id"]).split("/")
    for position, name in enumerate(projection.key):
        raw = data.get(name, parts[position] if position < len(parts) else None)
        values[name] = _date(raw) if name == "day" else raw
    return values


async def apply_changes(session: AsyncSession, changes: Sequence[dict[str, Any]]) -> None:
    """Apply feed entries in order; unknown entities are skipped (a newer catalog)."""
    dialect = session.get_bind().dialect.name
    insert = insert_for(dialect)
    for change in changes:
        projection = PROJECTIONS.get(change["entity"])
        if projection is None:
            continue
        model: Any = projection.model
        key = {
            "tenant_id": change["tenant_id"],
            **_key_values(projection, change["entity"], change),
        }
        if change["op"] == "delete":
            await session.execute(
                delete(model).where(*[getattr(model, k) == v for k, v in key.items()])
            )
            continue
        data = change.get("data") or {}
        values = {column: convert(data) for column, convert in projection.columns.items()}
        stmt = insert(model).values(**key, **values)
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=values)
        await session.execute(stmt)


async def current_seq(session: AsyncSession) -> int:
    value = await session.scalar(select(SyncState.catalog_seq).where(SyncState.name == STATE_KEY))
    return int(value or 0)


@dataclass
class CatalogSync:
    """Pulls the catalog's change feed into the read model; one per app."""

    sessionmaker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    secret: str
    interval_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_caught_up: float | None = None  # monotonic time the feed was last read to its end
    started: float = field(default_factory=time.monotonic)

    def _token(self) -> str:
        return mint_token(self.secret, ALL_TENANTS, ["catalog:sync"], ttl_seconds=300)

    async def pull(self) -> int:
        """Read the feed to its end and apply it; returns the catalog sequence reached."""
        async with self.lock:
            headers = {"Authorization": f"Bearer {self._token()}"}
            while True:
                async with self.sessionmaker() as session:
                    after = await current_seq(session)
                try:
                    response = await self.client.get(
                        "/v1/changes", params={"after": after, "limit": PAGE_SIZE}, headers=headers
                    )
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    raise ServiceUnavailable(
                        "The catalog service did not answer the change feed "
                        f"({type(exc).__name__}); "
                        "attribution keeps serving with the catalog data it has.",
                        headers={"Retry-After": "5"},
                    ) from exc
                feed = response.json()
                changes = feed["changes"]
                if changes:
                    await self._apply(after, changes)
                if len(changes) < PAGE_SIZE:
                    self.last_caught_up = time.monotonic()
                    self.update_lag()
                    async with self.sessionmaker() as session:
                        return await current_seq(session)

    async def _apply(self, after: int, changes: list[dict[str, Any]]) -> None:
        async with self.sessionmaker() as session:
            # Lock the state row so two replicas never apply overlapping pages out of order.
            state = await session.scalar(
                select(SyncState).where(SyncState.name == STATE_KEY).with_for_update()
            )
            if state is None:
                state = SyncState(name=STATE_KEY, catalog_seq=0)
                session.add(state)
            fresh = [c for c in changes if c["seq"] > state.catalog_seq]
            if fresh:
                await apply_changes(session, fresh)
                state.catalog_seq = fresh[-1]["seq"]
                state.last_change_at = utcnow()
            state.last_success_at = utcnow()
            await session.commit()

    def update_lag(self) -> float:
        reference = self.last_caught_up if self.last_caught_up is not None else self.started
        lag = max(0.0, time.monotonic() - reference)
        CATALOG_SYNC_LAG.set(lag)
        return lag

    async def run_forever(self) -> None:
        backoff = self.interval_seconds
        while True:
            try:
                await self.pull()
                backoff = self.interval_seconds
            except ServiceUnavailable:
                backoff = min(self.max_backoff_seconds, max(backoff * 2, self.interval_seconds))
                log.warning("catalog unreachable; next try in %.1fs", backoff)
            except asyncio.CancelledError:
                raise
            except Exception:
                backoff = min(self.max_backoff_seconds, max(backoff * 2, self.interval_seconds))
                log.exception("catalog sync failed; next try in %.1fs", backoff)
            self.update_lag()
            await asyncio.sleep(backoff)
