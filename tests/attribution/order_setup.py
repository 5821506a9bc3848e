"""Set-up for order and attribution tests: a small catalog, events and orders via the APIs."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import time_machine

from tests.conftest import auth

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def at(**delta: float) -> dt.datetime:
    return T0 + dt.timedelta(**delta)


def iso(value: dt.datetime) -> str:
    return value.isoformat()


def clock_fixture(now: dt.datetime) -> Callable[[], Iterator[None]]:
    """An autouse fixture: the services' clock at ``now`` (running on), tokens included.

    A test module takes it as ``clock = clock_fixture(NOW)``.
    """

    @pytest.fixture(autouse=True)
    def clock() -> Iterator[None]:
        with time_machine.travel(now, tick=True):
            yield

    return clock


@dataclass
class Shop:
    """A tenant with a catalog: v1 shows p1, v2 shows p2, live1 pins p1 and p2."""

    tenant: str
    token: str
    catalog: httpx.AsyncClient
    attribution: httpx.AsyncClient

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)

    async def events(self, *events: dict[str, Any]) -> dict[str, Any]:
        response = await self.attribution.post(
            "/v1/events", json={"events": list(events)}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["rejected"] == [], body
        return body

    async def order(self, expect: int | None = 201, **fields: Any) -> httpx.Response:
        body = order_body(**fields)
        response = await self.attribution.post("/v1/orders", json=body, headers=self.headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    async def credits(self, order_id: str, model: str = "last_touch") -> list[dict[str, Any]]:
        response = await self.attribution.get(
            f"/v1/orders/{order_id}/attribution", params={"model": model}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        credits: list[dict[str, Any]] = response.json()["credits"]
        return credits

    async def credited(self, order_id: str = "o1", model: str = "last_touch") -> list[str]:
        """The event ids the order's credits go to, in credit order."""
        return [c["event_id"] for c in await self.credits(order_id, model)]


def touch(
    type_: str,
    when: dt.datetime,
    *,
    user: str = "u1",
    content: str | None = "v1",
    product: str | None = None,
    ad: str | None = None,
    click_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id or f"e{next(_ids)}",
        "type": type_,
        "occurred_at": iso(when),
        "user_id": user,
    }
    for key, value in (
        ("content_id", content),
        ("product_id", product),
        ("ad_id", ad),
        ("click_id", click_id),
    ):
        if value is not None:
            event[key] = value
    return event


def order_body(
    *,
    order_id: str = "o1",
    status: str = "paid",
    when: dt.datetime | None = None,
    user: str | None = "u1",
    click_ids: list[str] | None = None,
    currency: str = "CNY",
    items: list[tuple[str, int, str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "status": status,
        "occurred_at": iso(when or at(hours=4)),
        "currency": currency,
        "items": [
            {"product_id": p, "quantity": q, "unit_price": price}
            for p, q, price in (items or [("p1", 1, "100.00")])
        ],
    }
    if user is not None:
        body["user_id"] = user
    if click_ids is not None:
        body["click_ids"] = click_ids
    return body


async def make_shop(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, tenant: str, token: str
) -> Shop:
    h = auth(token)
    puts: list[tuple[str, dict[str, Any]]] = [
        ("/v1/accounts/acc1", {"platform": "douyin", "handle": "@one"}),
        ("/v1/products/p1", {"title": "Lipstick", "price": "100.00", "currency": "CNY"}),
        ("/v1/products/p2", {"title": "Serum", "price": "50.00", "currency": "CNY"}),
        ("/v1/products/p3", {"title": "Unlinked", "price": "10.00", "currency": "CNY"}),
        ("/v1/contents/v1", {"kind": "video", "account_id": "acc1", "title": "Looks"}),
        ("/v1/contents/v2", {"kind": "video", "account_id": "acc1", "title": "Serums"}),
        ("/v1/contents/v1/products/p1", {"placement": "product_card"}),
        ("/v1/contents/v2/products/p2", {"placement": "product_card"}),
    ]
    for path, body in puts:
        response = await catalog.put(path, json=body, headers=h)
        assert response.status_code in (200, 201), response.text
    response = await attribution.post("/v1/sync", headers=h)
    assert response.status_code == 200, response.text
    return Shop(tenant, token, catalog, attribution)
