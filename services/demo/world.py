"""The shop's world: what the catalog holds, and how each object is PUT to the catalog API.

Pure data. A world lists its contents most popular first (the viewers' Zipf ranking), and
answers the questions the viewers ask of it: a content's products, its ads, the product
pinned in a live room at a given moment.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from services.demo.timeline import CURRENCY
from services.demo.wire import iso, money
from shared.vocabulary import AdFormat, ContentKind, Placement, Platform

CATEGORIES = ("beauty", "skincare", "fashion", "snacks", "home", "digital")

Request = tuple[str, dict[str, Any]]


def with_set(body: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``body`` plus those of the ``optional`` fields that are set (not None), in order."""
    body.update((key, value) for key, value in optional.items() if value is not None)
    return body


def plain_body(record: Any, *skip: str) -> dict[str, Any]:
    """A record's fields as sent, by their own names, but ``skip`` and those not set (None)."""
    return with_set(
        {}, **{f.name: getattr(record, f.name) for f in fields(record) if f.name not in skip}
    )


def window(
    start_key: str, end_key: str, start_us: int | None, end_us: int | None
) -> dict[str, str]:
    """The two instants of a time window as fields, or none when it is open."""
    if start_us is None or end_us is None:
        return {}
    return {start_key: iso(start_us), end_key: iso(end_us)}


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    platform: Platform
    handle: str
    display_name: str | None = None

    def body(self) -> dict[str, Any]:
        return plain_body(self, "id")


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    price: Decimal
    category: str | None = None
    url: str | None = None

    def body(self) -> dict[str, Any]:
        body = {"title": self.title, "price": money(self.price)}
        return {**with_set(body, url=self.url, category=self.category), "currency": CURRENCY}


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
        body = {
            "kind": self.kind,
            "account_id": self.account_id,
            "title": self.title,
            "published_at": iso(self.published_us),
            "duration_seconds": self.duration_s,
        }
        return with_set(
            body,
            topics=list(self.topics) or None,
            format=self.format,
            **window("started_at", "ended_at", self.started_us, self.ended_us),
        )


@dataclass(frozen=True, slots=True)
class Link:
    """A product placed in a content; a pinned product has the slot of the show it is pinned."""

    content_id: str
    product_id: str
    placement: Placement
    starts_us: int | None = None
    ends_us: int | None = None

    def body(self) -> dict[str, Any]:
        return {
            "placement": self.placement,
            **window("starts_at", "ends_at", self.starts_us, self.ends_us),
        }


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    objective: str | None = None
    starts_us: int | None = None
    ends_us: int | None = None
    budget: Decimal | None = None

    def body(self) -> dict[str, Any]:
        budget = {} if self.budget is None else {"budget": money(self.budget), "currency": CURRENCY}
        return with_set(
            {"name": self.name},
            objective=self.objective,
            **window("starts_at", "ends_at", self.starts_us, self.ends_us),
            **budget,
        )


@dataclass(frozen=True, slots=True)
class Ad:
    id: str
    campaign_id: str
    content_id: str
    product_id: str
    format: AdFormat
    name: str

    def body(self) -> dict[str, Any]:
        return plain_body(self, "id")


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
        return plain_body(self)


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
