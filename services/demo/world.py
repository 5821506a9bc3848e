"""The shop's world: what the catalog holds, and how each object is PUT to the catalog API.

Pure data. A world lists its contents most popular first (the viewers' Zipf ranking), and
answers the questions the viewers ask of it: a content's products, its ads, the product
pinned in a live room at a given moment.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.demo.timeline import CURRENCY
from services.demo.wire import iso, money
from shared.vocabulary import AdFormat, ContentKind, Placement, Platform

CATEGORIES = ("beauty", "skincare", "fashion", "snacks", "home", "digital")

Request = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    platform: Platform
    handle: str
    display_name: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"platform": self.platform, "handle": self.handle}
        if self.display_name is not None:
            body["display_name"] = self.display_name
        return body


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    price: Decimal
    category: str | None = None
    url: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"title": self.title, "price": money(self.price)}
        if self.url is not None:
            body["url"] = self.url
        if self.category is not None:
            body["category"] = self.category
        body["currency"] = CURRENCY
        return body


@dataclass(frozen=True, slots=True)
class Content:
    id: str
    kind: ContentKind
    account_id: str
    platform: Platform
    title: str
    published_us: int
    duration_s: int
    started_us: int | None = None  # a live room is live from here …
    ended_us: int | None = None  # … to here
    topics: tuple[str, ...] = ()
    format: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "account_id": self.account_id,
            "title": self.title,
            "published_at": iso(self.published_us),
            "duration_seconds": self.duration_s,
        }
        if self.topics:
            body["topics"] = list(self.topics)
        if self.format is not None:
            body["format"] = self.format
        if self.started_us is not None and self.ended_us is not None:
            body["started_at"] = iso(self.started_us)
            body["ended_at"] = iso(self.ended_us)
        return body


@dataclass(frozen=True, slots=True)
class Link:
    """A product placed in a content; a pinned product has the slot of the show it is pinned."""

    content_id: str
    product_id: str
    placement: Placement
    starts_us: int | None = None
    ends_us: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"placement": self.placement}
        if self.starts_us is not None and self.ends_us is not None:
            body["starts_at"] = iso(self.starts_us)
            body["ends_at"] = iso(self.ends_us)
        return body


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    objective: str | None = None
    starts_us: int | None = None
    ends_us: int | None = None
    budget: Decimal | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name}
        if self.objective is not None:
            body["objective"] = self.objective
        if self.starts_us is not None and self.ends_us is not None:
            body["starts_at"] = iso(self.starts_us)
            body["ends_at"] = iso(self.ends_us)
        if self.budget is not None:
            body["budget"] = money(self.budget)
            body["currency"] = CURRENCY
        return body


@dataclass(frozen=True, slots=True)
class Ad:
    id: str
    campaign_id: str
    content_id: str
    product_id: str
    format: AdFormat
    name: str

    def body(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "content_id": self.content_id,
            "product_id": self.product_id,
            "format": self.format,
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class Spend:
    ad_id: str
    day: dt.date
    amount: Decimal

    def body(self) -> dict[str, Any]:
        return {"amount": str(self.amount), "currency": CURRENCY}


@dataclass(frozen=True, slots=True)
class TrackingLink:
    content_id: str
    product_id: str
    ad_id: str | None
    destination_url: str

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "content_id": self.content_id,
            "product_id": self.product_id,
            "destination_url": self.destination_url,
        }
        if self.ad_id is not None:
            body["ad_id"] = self.ad_id
        return body


@dataclass
class World:
    accounts: Sequence[Account]
    products: Sequence[Product]
    contents: Sequence[Content]  # most popular first
    links: Sequence[Link]
    campaigns: Sequence[Campaign]
    ads: Sequence[Ad]
    spend: Sequence[Spend]
    tracking_links: Sequence[TrackingLink] = ()
    price: dict[str, Decimal] = field(init=False, repr=False, compare=False)
    _products_of: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _ads_of: dict[str, list[Ad]] = field(init=False, repr=False, compare=False)
    _slots: dict[str, list[Link]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.price = {p.id: p.price for p in self.products}
        linked: dict[str, list[str]] = {}
        self._slots = {}
        for link in self.links:
            linked.setdefault(link.content_id, []).append(link.product_id)
            if link.starts_us is not None and link.ends_us is not None:
                self._slots.setdefault(link.content_id, []).append(link)
        self._products_of = {key: tuple(value) for key, value in linked.items()}
        self._ads_of = {}
        for ad in self.ads:
            self._ads_of.setdefault(ad.content_id, []).append(ad)

    def products_of(self, content_id: str) -> tuple[str, ...]:
        """The products placed in a content, in the order they were linked."""
        return self._products_of[content_id]

    def ads_of(self, content_id: str) -> list[Ad] | None:
        return self._ads_of.get(content_id)

    def pinned_at(self, content_id: str, t_us: int) -> str | None:
        """The product pinned in a live room at ``t_us``, if its links have slots."""
        for link in self._slots.get(content_id, ()):
            assert link.starts_us is not None
            assert link.ends_us is not None
            if link.starts_us <= t_us < link.ends_us:
                return link.product_id
        return None

    def requests(self) -> list[list[Request]]:
        """The catalog PUTs in stages; each stage only references objects of earlier ones."""
        return [
            [(f"/v1/accounts/{a.id}", a.body()) for a in self.accounts]
            + [(f"/v1/products/{p.id}", p.body()) for p in self.products],
            [(f"/v1/contents/{c.id}", c.body()) for c in self.contents],
            [(f"/v1/contents/{k.content_id}/products/{k.product_id}", k.body()) for k in self.links]
            + [(f"/v1/campaigns/{c.id}", c.body()) for c in self.campaigns],
            [(f"/v1/ads/{ad.id}", ad.body()) for ad in self.ads],
            [(f"/v1/ads/{s.ad_id}/spend/{s.day.isoformat()}", s.body()) for s in self.spend],
        ]


#: Builds a world from the month's random source, its size in events, its first instant and
#: how long its viewing lasts (microseconds).
WorldBuilder = Callable[[random.Random, int, int, int], World]
