"""Small builders for catalog objects, always made through the public HTTP API.

``Shop`` is one tenant acting on the catalog with a read+write token: each method PUTs (or
POSTs) an object with sensible defaults that any keyword overrides, asserts it was accepted and
returns the answer. ``Shop.world()`` makes one of everything for tests that need references.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from shared.errors import PROBLEM_JSON

Json = dict[str, Any]

UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
TIMESTAMP_FIELDS = {"published_at", "started_at", "ended_at", "starts_at", "ends_at"}
MONEY_FIELDS = {"price", "budget", "amount"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- request bodies -------------------------------------------------------------------------


def account_body(**overrides: Any) -> Json:
    return {"platform": "douyin", "handle": "@glowlab", "display_name": "Glow Lab"} | overrides


def product_body(**overrides: Any) -> Json:
    return {
        "title": "Velvet lipstick 03",
        "price": "129.90",
        "currency": "CNY",
        "url": "https://shop.test/products/velvet-03",
        "category": "beauty",
    } | overrides


def _content_body(
    kind: str, account_id: str, title: str, topics: list[str], /, **fields: Any
) -> Json:
    """A content of ``kind`` by ``account_id``; ``fields`` are the kind's own (and overrides)."""
    return {"kind": kind, "account_id": account_id, "title": title, "topics": topics} | fields


def video_body(account_id: str, **overrides: Any) -> Json:
    video = {
        "published_at": "2024-06-01T12:00:00+08:00",
        "duration_seconds": 42,
        "format": "tutorial",
    }
    title = "Five looks with one lipstick"
    return _content_body("video", account_id, title, ["beauty", "tutorial"], **video | overrides)


def live_body(account_id: str, **overrides: Any) -> Json:
    live = {"started_at": "2024-06-18T20:00:00+08:00", "ended_at": "2024-06-18T23:30:00+08:00"}
    return _content_body("live", account_id, "618 live sale", ["sale"], **live | overrides)


def link_body(**overrides: Any) -> Json:
    return {
        "placement": "pinned",
        "starts_at": "2024-06-18T20:15:00+08:00",
        "ends_at": "2024-06-18T20:45:00+08:00",
    } | overrides


def campaign_body(**overrides: Any) -> Json:
    return {
        "name": "618 lipstick push",
        "objective": "sales",
        "starts_at": "2024-06-01T00:00:00+08:00",
        "ends_at": "2024-06-19T00:00:00+08:00",
        "budget": "5000.00",
        "currency": "CNY",
    } | overrides


def ad_body(campaign_id: str, content_id: str, **overrides: Any) -> Json:
    return {
        "campaign_id": campaign_id,
        "content_id": content_id,
        "product_id": None,
        "format": "native",
        "name": "In-feed native",
    } | overrides


def spend_body(**overrides: Any) -> Json:
    return {"amount": "250.50", "currency": "CNY"} | overrides


def tracking_link_body(content_id: str, **overrides: Any) -> Json:
    return {
        "content_id": content_id,
        "destination_url": "https://shop.test/products/velvet-03?ref=video",
    } | overrides


# --- checks ---------------------------------------------------------------------------------


def problem_issues(response: httpx.Response, status: int, field: str | None = None) -> list[str]:
    """What is wrong with ``response`` as a problem+json answer of ``status`` (empty: nothing).

    With ``field``, one of its ``errors`` must name that field in its ``loc``.
    """
    issues: list[str] = []
    if response.status_code != status:
        issues.append(f"status {response.status_code} != {status}: {response.text[:300]}")
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(PROBLEM_JSON):
        issues.append(f"content-type {content_type!r} is not {PROBLEM_JSON}")
        return issues
    body = response.json()
    missing = {"type", "title", "status", "detail"} - set(body)
    if missing:
        issues.append(f"problem lacks {sorted(missing)}")
    if body.get("status") != response.status_code:
        issues.append(f"problem status {body.get('status')} != {response.status_code}")
    if field is not None:
        locs = [e.get("loc", []) for e in body.get("errors") or []]
        if not any(field in loc for loc in locs):
            issues.append(f"no error names {field!r}; locs: {locs}")
    return issues


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> Json:
    issues = problem_issues(response, status, field)
    assert not issues, f"{response.request.method} {response.request.url.path}: {issues}"
    body: Json = response.json()
    return body


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def field_issues(answer: Json, given: Json) -> list[str]:
    """Fields of ``given`` that ``answer`` does not carry (timestamps and money by value)."""
    issues: list[str] = []
    for name, value in given.items():
        if name not in answer:
            issues.append(f"{name} missing")
            continue
        got = answer[name]
        if name in TIMESTAMP_FIELDS and value is not None:
            if not isinstance(got, str) or not UTC_Z.match(got):
                issues.append(f"{name}={got!r} is not UTC with Z")
            elif parse_ts(got) != parse_ts(value):
                issues.append(f"{name}={got!r} is not the instant {value!r}")
        elif name in MONEY_FIELDS and value is not None:
            if not isinstance(got, str) or Decimal(got) != Decimal(str(value)):
                issues.append(f"{name}={got!r} is not the decimal string of {value!r}")
        elif got != value:
            issues.append(f"{name}={got!r} != {value!r}")
    return issues


def stamp_issues(answer: Json) -> list[str]:
    issues = []
    for name in ("created_at", "updated_at"):
        value = answer.get(name)
        if not isinstance(value, str) or not UTC_Z.match(value):
            issues.append(f"{name}={value!r} is not UTC with Z")
    return issues


def assert_object(answer: Json, given: Json, key: Json) -> None:
    """An answered object carries its key, the fields it was given, and UTC stamps."""
    issues = field_issues(answer, {**key, **given}) + stamp_issues(answer)
    assert not issues, f"{issues} in {answer}"


# --- the tenant acting through the API ------------------------------------------------------


@dataclass
class World:
    """One of every object, for tests that need something to refer to."""

    account: Json
    product: Json
    video: Json
    live: Json
    link: Json
    campaign: Json
    ad: Json
    spend: Json
    tracking_link: Json


class Shop:
    """One tenant writing and reading its catalog through the API."""

    def __init__(self, client: httpx.AsyncClient, tenant_id: str, token: str) -> None:
        self.client = client
        self.tenant_id = tenant_id
        self.headers = {"Authorization": f"Bearer {token}"}

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def put(self, path: str, body: Json, *, expect: tuple[int, ...] = (201,)) -> Json:
        response = await self.request("PUT", path, json=body)
        assert response.status_code in expect, f"PUT {path}: {response.status_code} {response.text}"
        answer: Json = response.json()
        return answer

    async def get(self, path: str) -> Json:
        response = await self.request("GET", path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        answer: Json = response.json()
        return answer

    async def delete(self, path: str) -> None:
        response = await self.request("DELETE", path)
        assert response.status_code == 204, f"DELETE {path}: {response.status_code}"

    async def list_all(self, path: str, limit: int = 500) -> list[Json]:
        """Every item of a list, following ``next_cursor``."""
        items: list[Json] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = (await self.request("GET", path, params=params)).json()
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            params["cursor"] = page["next_cursor"]

    async def account(self, account_id: str | None = None, **overrides: Any) -> Json:
        return await self.put(
            f"/v1/accounts/{account_id or new_id('acc')}", account_body(**overrides)
        )

    async def product(self, product_id: str | None = None, **overrides: Any) -> Json:
        return await self.put(
            f"/v1/products/{product_id or new_id('prd')}", product_body(**overrides)
        )

    async def video(
        self, content_id: str | None = None, *, account_id: str | None = None, **overrides: Any
    ) -> Json:
        account_id = account_id or (await self.account())["id"]
        body = video_body(account_id, **overrides)
        return await self.put(f"/v1/contents/{content_id or new_id('vid')}", body)

    async def live(
        self, content_id: str | None = None, *, account_id: str | None = None, **overrides: Any
    ) -> Json:
        account_id = account_id or (await self.account())["id"]
        body = live_body(account_id, **overrides)
        return await self.put(f"/v1/contents/{content_id or new_id('live')}", body)

    async def link(self, content_id: str, product_id: str, **overrides: Any) -> Json:
        path = f"/v1/contents/{content_id}/products/{product_id}"
        return await self.put(path, link_body(**overrides))

    async def campaign(self, campaign_id: str | None = None, **overrides: Any) -> Json:
        path = f"/v1/campaigns/{campaign_id or new_id('cmp')}"
        return await self.put(path, campaign_body(**overrides))

    async def ad(
        self,
        ad_id: str | None = None,
        *,
        campaign_id: str | None = None,
        content_id: str | None = None,
        **overrides: Any,
    ) -> Json:
        campaign_id = campaign_id or (await self.campaign())["id"]
        content_id = content_id or (await self.video())["id"]
        body = ad_body(campaign_id, content_id, **overrides)
        return await self.put(f"/v1/ads/{ad_id or new_id('ad')}", body)

    async def spend(self, ad_id: str, day: str = "2024-06-18", **overrides: Any) -> Json:
        return await self.put(f"/v1/ads/{ad_id}/spend/{day}", spend_body(**overrides))

    async def tracking_link(self, content_id: str, **overrides: Any) -> Json:
        body = tracking_link_body(content_id, **overrides)
        response = await self.request("POST", "/v1/tracking-links", json=body)
        assert response.status_code == 201, f"POST tracking link: {response.text}"
        answer: Json = response.json()
        return answer

    async def new_body(self, kind: str) -> Json:
        """A valid body for a new object of ``kind``, the objects it refers to created first."""
        if kind == "account":
            return account_body()
        if kind == "product":
            return product_body()
        if kind == "campaign":
            return campaign_body()
        if kind in ("video", "live"):
            account_id = (await self.account())["id"]
            return video_body(account_id) if kind == "video" else live_body(account_id)
        assert kind == "ad"
        campaign, video, product = await self.campaign(), await self.video(), await self.product()
        return ad_body(campaign["id"], video["id"], product_id=product["id"], format="pre_roll")

    async def world(self) -> World:
        account = await self.account()
        product = await self.product()
        video = await self.video(account_id=account["id"])
        live = await self.live(account_id=account["id"])
        link = await self.link(live["id"], product["id"])
        campaign = await self.campaign()
        ad = await self.ad(
            campaign_id=campaign["id"], content_id=video["id"], product_id=product["id"]
        )
        spend = await self.spend(ad["id"])
        tracking_link = await self.tracking_link(
            video["id"], product_id=product["id"], ad_id=ad["id"]
        )
        return World(account, product, video, live, link, campaign, ad, spend, tracking_link)


def unseen_world() -> World:
    """Ids for a world that was never created (enough to address every route)."""
    account, product, video, live = new_id("acc"), new_id("prd"), new_id("vid"), new_id("live")
    campaign, ad = new_id("cmp"), new_id("ad")
    return World(
        account={"id": account},
        product={"id": product},
        video={"id": video},
        live={"id": live},
        link={"content_id": live, "product_id": product},
        campaign={"id": campaign},
        ad={"id": ad},
        spend={"ad_id": ad, "day": "2024-06-18"},
        tracking_link={"code": "nOsUcHcOdE"},
    )


# --- the change feed ------------------------------------------------------------------------


async def read_feed(
    client: httpx.AsyncClient, sync_token: str, *, after: int = 0, limit: int = 5000
) -> list[Json]:
    """Every change after ``after``, following ``next_after`` until a page comes back empty."""
    changes: list[Json] = []
    headers = {"Authorization": f"Bearer {sync_token}"}
    while True:
        response = await client.get(
            "/v1/changes", params={"after": after, "limit": limit}, headers=headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["changes"]:
            assert page["next_after"] == after
            return changes
        changes += page["changes"]
        after = page["next_after"]


def tenant_changes(changes: list[Json], tenant_id: str) -> list[Json]:
    return [c for c in changes if c["tenant_id"] == tenant_id]
