"""Small builders for events, catalog objects and database reads used by attribution tests."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.attribution.models import Event, RejectedEvent
from tests.conftest import auth

_counter = itertools.count(1)
# A fixed instant in the past of any server clock (events may not be more than 5 minutes ahead).
OCCURRED_AT = dt.datetime(2024, 6, 1, 11, 59, tzinfo=dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def next_id(prefix: str = "ev") -> str:
    return f"{prefix}-{next(_counter)}"


def event(**fields: Any) -> dict[str, Any]:
    """A valid `view` event at OCCURRED_AT; keyword arguments override (None drops a field)."""
    values: dict[str, Any] = {
        "event_id": next_id(),
        "type": "view",
        "occurred_at": iso(OCCURRED_AT),
        "user_id": "u-1",
        "content_id": "c-1",
    }
    values.update(fields)
    return {key: value for key, value in values.items() if value is not None}


def batch(*events: Any) -> dict[str, Any]:
    return {"events": list(events)}


# --- database reads through the app's own sessionmaker ------------------------------------------


async def stored_events(app: FastAPI, tenant: str) -> dict[str, Event]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(select(Event).where(Event.tenant_id == tenant))
        return {row.event_id: row for row in rows}


async def stored_rejections(app: FastAPI, tenant: str) -> list[RejectedEvent]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(RejectedEvent)
            .where(RejectedEvent.tenant_id == tenant)
            .order_by(RejectedEvent.id)
        )
        return list(rows)


def events_counter(event_type: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "clipfunnel_events_received_total", {"type": event_type, "outcome": outcome}
    )
    return value or 0.0


# --- catalog objects -----------------------------------------------------------------------------


async def _put(catalog: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]) -> None:
    response = await catalog.put(path, json=body, headers=auth(token))
    assert response.status_code in (200, 201), response.text


async def make_tracking_link(
    catalog: httpx.AsyncClient,
    token: str,
    *,
    destination_url: str = "https://shop.example/p/1",
    content_id: str = "vid-1",
    product_id: str | None = "prod-1",
    ad_id: str | None = "ad-1",
) -> str:
    """Create (through the catalog API) what a tracking link needs, then the link; its code."""
    objects: list[tuple[str, dict[str, Any]]] = [
        ("/v1/accounts/acct-1", {"platform": "douyin", "handle": "shop"}),
        (
            f"/v1/contents/{content_id}",
            {"kind": "video", "account_id": "acct-1", "title": "Unboxing"},
        ),
    ]
    if product_id is not None:
        body = {"title": "Lipstick", "price": "129.90", "currency": "CNY"}
        objects.append((f"/v1/products/{product_id}", body))
    if ad_id is not None:
        objects.append(("/v1/campaigns/camp-1", {"name": "Spring"}))
        ad = {"campaign_id": "camp-1", "content_id": content_id, "product_id": product_id}
        objects.append((f"/v1/ads/{ad_id}", {**ad, "format": "native"}))
    for path, body in objects:
        await _put(catalog, token, path, body)
    link: dict[str, Any] = {"content_id": content_id, "destination_url": destination_url}
    if product_id is not None:
        link["product_id"] = product_id
    if ad_id is not None:
        link["ad_id"] = ad_id
    response = await catalog.post("/v1/tracking-links", json=link, headers=auth(token))
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


async def sync_catalog(attribution: httpx.AsyncClient, admin_token: str) -> None:
    response = await attribution.post("/v1/sync", headers=auth(admin_token))
    assert response.status_code == 200, response.text
