"""Tenant A's world, built through the public APIs of both services, and a snapshot of it.

A has one of everything: an account, products, a video and a live room, a content–product
link, a campaign, an ad with a day of spend, a tracking link; events (and a rejected one),
a paid order with a refund, attribution settings with a webhook secret. ``snapshot`` reads
all of it back with A's own tokens, so a test can prove that nothing another tenant did
changed any of it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from services.attribution.models import Event
from shared.auth import mint_token
from tests.conftest import TEST_SECRET, auth

# A fixed instant in the past: the world is the same on every run.
T0 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)
DAY = (T0 - dt.timedelta(days=1)).date().isoformat()
RANGE = {
    "from": (T0 - dt.timedelta(days=1)).isoformat(),
    "to": (T0 + dt.timedelta(days=1)).isoformat(),
}
WEBHOOK_SECRET = "whsec-tenant-a-0123456789abcdef"


def iso(delta_minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=delta_minutes)).isoformat()


@dataclass
class World:
    tenant: str
    token: str
    sync_token: str
    ids: dict[str, str] = field(default_factory=dict)
    order: dict[str, Any] = field(default_factory=dict)
    event_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


def order_body(order_id: str = "ord-a1") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": "paid",
        "occurred_at": iso(60),
        "user_id": "viewer-a",
        "click_ids": ["clk-a1"],
        "currency": "CNY",
        "items": [{"product_id": "prod-a1", "quantity": 2, "unit_price": "50.00"}],
    }


async def build_world(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, tenant: str
) -> World:
    token = mint_token(TEST_SECRET, tenant, ["admin"])
    world = World(tenant, token, mint_token(TEST_SECRET, tenant, ["catalog:sync"]))
    h = world.headers
    ids = {
        "account": "acct-a1",
        "product": "prod-a1",
        "product2": "prod-a2",
        "content": "vid-a1",
        "live": "live-a1",
        "campaign": "camp-a1",
        "ad": "ad-a1",
        "day": DAY,
        "order": "ord-a1",
        "refund": "ref-a1",
        "integration": "shop-a1",
        "experiment": "exp-a1",
    }
    puts: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/accounts/{ids['account']}", {"platform": "douyin", "handle": "@a"}),
        (
            f"/v1/products/{ids['product']}",
            {"title": "Lipstick", "price": "50.00", "currency": "CNY"},
        ),
        (
            f"/v1/products/{ids['product2']}",
            {"title": "Serum", "price": "80.00", "currency": "CNY"},
        ),
        (
            f"/v1/contents/{ids['content']}",
            {"kind": "video", "account_id": ids["account"], "title": "Looks"},
        ),
        (
            f"/v1/contents/{ids['live']}",
            {
                "kind": "live",
                "account_id": ids["account"],
                "title": "Live",
                "started_at": iso(-60),
                "ended_at": iso(120),
            },
        ),
        (f"/v1/contents/{ids['content']}/products/{ids['product']}", {"placement": "pinned"}),
        (
            f"/v1/campaigns/{ids['campaign']}",
            {"name": "Spring", "budget": "1000", "currency": "CNY"}
            | {
                "objective": "engagement",
                "activity": "qa",
                "starts_at": iso(0),
                "ends_at": iso(60),
            },
        ),
        (
            f"/v1/ads/{ids['ad']}",
            {
                "campaign_id": ids["campaign"],
                "content_id": ids["content"],
                "product_id": ids["product"],
                "format": "native",
            },
        ),
        (f"/v1/ads/{ids['ad']}/spend/{ids['day']}", {"amount": "12.50", "currency": "CNY"}),
    ]
    for path, body in puts:
        response = await catalog.put(path, json=body, headers=h)
        assert response.status_code in (200, 201), (path, response.text)
    response = await catalog.post(
        "/v1/tracking-links",
        json={
            "content_id": ids["content"],
            "product_id": ids["product"],
            "ad_id": ids["ad"],
            "destination_url": "https://shop.example/p/1",
        },
        headers=h,
    )
    assert response.status_code == 201, response.text
    ids["code"] = response.json()["id"]
    response = await attribution.post("/v1/sync", headers=h)
    assert response.status_code == 200, response.text

    events = [
        {
            "event_id": "evt-a1",
            "type": "impression",
            "occurred_at": iso(0),
            "user_id": "viewer-a",
            "content_id": ids["content"],
            "ad_id": ids["ad"],
        },
        {
            "event_id": "evt-a2",
            "type": "view",
            "occurred_at": iso(1),
            "user_id": "viewer-a",
            "content_id": ids["content"],
            "ad_id": ids["ad"],
        },
        {
            "event_id": "evt-a3",
            "type": "click",
            "occurred_at": iso(2),
            "user_id": "viewer-a",
            "content_id": ids["content"],
            "product_id": ids["product"],
            "ad_id": ids["ad"],
            "click_id": "clk-a1",
        },
        {
            "event_id": "evt-a4",
            "type": "live_enter",
            "occurred_at": iso(3),
            "user_id": "viewer-a",
            "content_id": ids["live"],
        },
        # Rejected (no content_id): kept in A's rejected-events store.
        {"event_id": "evt-a-bad", "type": "view", "occurred_at": iso(4), "user_id": "viewer-a"},
    ]
    response = await attribution.post("/v1/events", json={"events": events}, headers=h)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 4, response.text
    world.event_ids = [e["event_id"] for e in events]
    # A conversation: a comment and a dm, each answered by the account.
    talk: list[dict[str, Any]] = [
        {"event_id": "evt-a-c1", "type": "comment", "occurred_at": iso(5), "user_id": "viewer-a"}
        | {"content_id": ids["content"]},
        {"event_id": "evt-a-r1", "type": "reply", "occurred_at": iso(15), "user_id": "acct"}
        | {"reply_to": "evt-a-c1", "account_id": ids["account"]},
        {"event_id": "evt-a-d1", "type": "dm", "occurred_at": iso(6), "user_id": "viewer-a"}
        | {"account_id": ids["account"]},
        {"event_id": "evt-a-d1r", "type": "dm_reply", "occurred_at": iso(9), "user_id": "acct"}
        | {"reply_to": "evt-a-d1"},
    ]
    response = await attribution.post("/v1/events", json={"events": talk}, headers=h)
    assert response.json()["accepted"] == len(talk), response.text

    world.order = order_body(ids["order"])
    response = await attribution.post("/v1/orders", json=world.order, headers=h)
    assert response.status_code == 201, response.text
    refund = {"refund_id": ids["refund"], "occurred_at": iso(90), "amount": "10.00"}
    response = await attribution.post(f"/v1/orders/{ids['order']}/refunds", json=refund, headers=h)
    assert response.status_code == 201, response.text
    settings = {"timezone": "Asia/Shanghai", "webhook_secret": WEBHOOK_SECRET}
    response = await attribution.put("/v1/settings", json=settings, headers=h)
    assert response.status_code == 200, response.text
    shop = {"platform": "shopify", "shop": "a-shop.myshopify.com", "secret": "shpss_a"}
    response = await attribution.put(f"/v1/integrations/{ids['integration']}", json=shop, headers=h)
    assert response.status_code == 201, response.text
    response = await attribution.put(
        f"/v1/experiments/{ids['experiment']}", json=experiment_body(ids), headers=h
    )
    assert response.status_code == 201, response.text
    world.ids = ids
    return world


def experiment_body(ids: dict[str, str]) -> dict[str, Any]:
    """A's video against A's live room on click rate, over the world's range."""
    return {
        "name": "Video or live",
        "variants": [
            {"key": "video", "content_ids": [ids["content"]]},
            {"key": "live", "content_ids": [ids["live"]]},
        ],
        "metric": "click_rate",
        "starts_at": RANGE["from"],
        "ends_at": RANGE["to"],
    }


async def snapshot(
    world: World,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Everything of A's that either service can show, read with A's tokens (``strict``: each
    read must succeed; otherwise a failed read is recorded as its status and body)."""
    h, ids = world.headers, world.ids
    reads: dict[str, tuple[httpx.AsyncClient, str, dict[str, str]]] = {
        "accounts": (catalog, "/v1/accounts", {}),
        "products": (catalog, "/v1/products", {}),
        "contents": (catalog, "/v1/contents", {}),
        "links": (catalog, f"/v1/contents/{ids['content']}/products", {}),
        "campaigns": (catalog, "/v1/campaigns", {}),
        "ads": (catalog, "/v1/ads", {}),
        "spend": (catalog, f"/v1/ads/{ids['ad']}/spend", {}),
        "tracking_links": (catalog, "/v1/tracking-links", {}),
        "settings": (attribution, "/v1/settings", {}),
        "order": (attribution, f"/v1/orders/{ids['order']}", {}),
        "credits": (attribution, f"/v1/orders/{ids['order']}/attribution", {"model": "linear"}),
        "rejected": (attribution, "/v1/events/rejected", {}),
        "integration": (attribution, f"/v1/integrations/{ids['integration']}", {}),
        "deliveries": (attribution, f"/v1/integrations/{ids['integration']}/deliveries", {}),
        "experiment": (attribution, f"/v1/experiments/{ids['experiment']}/results", {}),
        "interactions": (attribution, "/v1/reports/interactions", RANGE),
        "scorecard": (attribution, "/v1/reports/scorecard", RANGE),
        "activities": (attribution, "/v1/reports/activities", RANGE),
    }
    state: dict[str, Any] = {}

    def record(name: str, response: httpx.Response) -> Any:
        if strict:
            assert response.status_code == 200, (name, response.text)
        state[name] = (
            response.json()
            if response.status_code == 200
            else (response.status_code, response.text)
        )

    for name, (client, path, params) in reads.items():
        record(name, await client.get(path, params=params, headers=h))
    record("changes", await catalog.get("/v1/changes", headers=auth(world.sync_token)))
    paths = {getattr(r, "path", None) for r in _routes(attribution_app)}
    if "/v1/funnels" in paths:
        response = await attribution.post(
            "/v1/funnels",
            json={"steps": [{"type": "view"}, {"type": "click"}], **RANGE},
            headers=h,
        )
        record("funnel", response)
    for report in ("ads", "contents"):
        if f"/v1/reports/{report}" in paths:
            response = await attribution.get(f"/v1/reports/{report}", params=RANGE, headers=h)
            record(f"report_{report}", response)
    async with attribution_app.state.sessionmaker() as session:
        rows = await session.scalars(select(Event).where(Event.tenant_id == world.tenant))
        state["events"] = sorted(
            (r.event_id, r.type, r.user_id, r.content_id, r.occurred_at.isoformat()) for r in rows
        )
    return state


def _routes(app: FastAPI) -> list[Any]:
    from shared.ratelimit import flat_routes

    return list(flat_routes(app.routes))
