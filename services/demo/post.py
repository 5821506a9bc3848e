"""Posting the demo through the public HTTP APIs of the catalog and attribution services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import orjson

from services.demo.month import Month
from services.demo.orders import Order
from services.demo.timeline import CURRENCY, DAY, TIMEZONE, TZ, from_us
from services.demo.viewers import Event
from services.demo.wire import money
from services.demo.world import Request, World

T = TypeVar("T")

EVENT_BATCH = 1_000
MAX_BODY_BYTES = 1 << 20  # the ingest limit; a batch over it is split, never refused
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_DELAYS = (0.25, 1.0, 3.0)


class DemoError(RuntimeError):
    """A demo request failed; the message names the service, the request and the answer."""


@dataclass
class LoadReport:
    seed: int
    first_day: str
    last_day: str
    accounts: int = 0
    videos: int = 0
    lives: int = 0
    products: int = 0
    links: int = 0
    campaigns: int = 0
    ads: int = 0
    spend_days: int = 0
    tracking_links_created: int = 0
    tracking_links_total: int = 0
    events_sent: int = 0
    events_accepted: int = 0
    events_duplicates: int = 0
    orders: int = 0
    orders_replayed: int = 0
    cancelled: int = 0
    refunds: int = 0
    full_refunds: int = 0
    gmv: str = "0"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        stages = ", ".join(f"{name} {secs:.1f}s" for name, secs in self.timings.items())
        return (
            f"demo (seed {self.seed}, {self.first_day} – {self.last_day} {TIMEZONE}) "
            f"loaded in {self.seconds:.1f}s ({stages})\n"
            f"  catalog: {self.accounts} accounts, {self.videos + self.lives} contents "
            f"({self.videos} videos, {self.lives} live), {self.products} products, "
            f"{self.links} product links, {self.campaigns} campaigns, {self.ads} ads, "
            f"{self.spend_days} ad-spend days, {self.tracking_links_total} tracking links "
            f"({self.tracking_links_created} new)\n"
            f"  events: {self.events_sent:,} sent, {self.events_accepted:,} accepted, "
            f"{self.events_duplicates:,} duplicates\n"
            f"  orders: {self.orders:,} ({self.orders_replayed:,} replays), "
            f"{self.cancelled} cancelled, {self.refunds} refunds ({self.full_refunds} full), "
            f"paid GMV {self.gmv} {CURRENCY}"
        )


@dataclass(eq=False)  # one client each: compared (and hashed) by identity
class Api:
    """One service's client: JSON calls that raise DemoError on any unexpected answer."""

    client: httpx.AsyncClient
    service: str

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ok: tuple[int, ...] = (200, 201),
        retry: bool = True,
        params: dict[str, str] | None = None,
        note: str | None = None,
    ) -> tuple[int, Any]:
        """Send one request; ``body`` is JSON-able or already-encoded bytes."""
        content = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempts = len(RETRY_DELAYS) + 1
        for attempt in range(attempts):
            try:
                response = await self.client.request(
                    method, path, content=content, headers=headers, params=params
                )
            except httpx.TransportError as exc:
                if retry and attempt + 1 < attempts:
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    continue
                raise DemoError(
                    f"{self.service} {method} {path}{_note(note)}: could not reach "
                    f"{self.client.base_url} ({type(exc).__name__}: {exc})"
                ) from exc
            # A 429 was not processed, so any request may be sent again after Retry-After.
            if response.status_code == 429 and attempt + 1 < attempts:
                await asyncio.sleep(_retry_after(response, RETRY_DELAYS[attempt]))
                continue
            # Otherwise only idempotent requests are retried, on a gateway/overload answer.
            if retry and response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                await asyncio.sleep(RETRY_DELAYS[attempt])
                continue
            if response.status_code not in ok:
                raise DemoError(self.describe(method, path + _note(note), response))
            return response.status_code, response.json() if response.content else None
        raise AssertionError("unreachable")  # pragma: no cover

    def describe(self, method: str, path: str, response: httpx.Response) -> str:
        text = f"{self.service} {method} {path} failed: HTTP {response.status_code}"
        try:
            problem = response.json()
        except ValueError:
            return f"{text}: {response.text[:300]}"
        if isinstance(problem, dict):
            parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
            errors = problem.get("errors") or problem.get("rejected")
            if isinstance(errors, list) and errors:
                parts.append(f"errors: {orjson.dumps(errors[:3]).decode()[:500]}")
            if parts:
                text += ": " + " — ".join(parts)
        return text


def _note(note: str | None) -> str:
    return f" [{note}]" if note else ""


async def each(items: Iterable[T], fn: Callable[[T], Awaitable[None]], concurrency: int) -> None:
    """Run ``fn`` over ``items`` with at most ``concurrency`` in flight, in the items' order.

    Workers share one iterator, so nothing is built ahead of being sent (memory stays flat).
    """
    shared: Iterator[T] = iter(items)

    async def worker() -> None:
        for item in shared:
            await fn(item)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))


async def put_catalog(api: Api, world: World, concurrency: int) -> int:
    """PUT every catalog object, stage by stage; returns how many."""

    async def put(request: Request) -> None:
        await api.call("PUT", *request)

    stages = world.requests()
    for stage in stages:
        await each(stage, put, concurrency)
    return sum(map(len, stages))


async def load_catalog(api: Api, world: World, report: LoadReport, concurrency: int) -> None:
    await put_catalog(api, world, concurrency)
    report.accounts = len(world.accounts)
    report.products = len(world.products)
    report.videos = sum(c.kind == "video" for c in world.contents)
    report.lives = sum(c.kind == "live" for c in world.contents)
    report.links = len(world.links)
    report.campaigns = len(world.campaigns)
    report.ads = len(world.ads)
    report.spend_days = len(world.spend)

    # POST mints a new code each time, so a rerun first looks for the links it made before.
    existing: set[tuple[Any, ...]] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        _, page = await api.call("GET", "/v1/tracking-links", params=params)
        for item in page["items"]:
            existing.add(
                (item["content_id"], item["product_id"], item["ad_id"], item["destination_url"])
            )
        cursor = page.get("next_cursor")
        if not cursor:
            break
    for link in world.tracking_links:
        key = (link.content_id, link.product_id, link.ad_id, link.destination_url)
        if key not in existing:
            await api.call("POST", "/v1/tracking-links", link.body(), ok=(201,), retry=False)
            report.tracking_links_created += 1
    report.tracking_links_total = len(world.tracking_links)


async def prepare_attribution(api: Api) -> int:
    """Tenant settings, then the catalog pulled into the read model (before events and orders
    are attributed); returns the catalog sequence it reached."""
    await api.call("PUT", "/v1/settings", {"currency": CURRENCY, "timezone": TIMEZONE})
    _, answer = await api.call("POST", "/v1/sync")
    seq: int = answer["catalog_seq"]
    return seq


def batch_body(events: list[Event]) -> bytes:
    """A ``POST /v1/events`` body."""
    return orjson.dumps({"events": [e.body() for e in events]})


def event_batches(events: list[Event], size: int = EVENT_BATCH) -> list[bytes]:
    """Pre-serialised batches of ``size`` events each."""
    return [batch_body(events[i : i + size]) for i in range(0, len(events), size)]


async def post_events(api: Api, events: list[Event], report: LoadReport, concurrency: int) -> None:
    async def post(chunk: list[Event]) -> None:
        content = batch_body(chunk)
        if len(content) > MAX_BODY_BYTES and len(chunk) > 1:
            half = len(chunk) // 2
            await post(chunk[:half])
            await post(chunk[half:])
            return
        note = f"events {chunk[0].event_id} … {chunk[-1].event_id}"
        _, answer = await api.call("POST", "/v1/events", content, note=note)
        rejected = answer.get("rejected") or []
        if rejected:
            first = "; ".join(
                f"#{r.get('index')} {r.get('event_id')}: {', '.join(r.get('errors', []))}"
                for r in rejected[:3]
            )
            raise DemoError(
                f"attribution POST /v1/events [{note}] rejected {len(rejected)} of {len(chunk)} "
                f"events: {first}"
            )
        report.events_sent += len(chunk)
        report.events_accepted += int(answer.get("accepted", 0))
        report.events_duplicates += int(answer.get("duplicates", 0))

    chunks = (events[i : i + EVENT_BATCH] for i in range(0, len(events), EVENT_BATCH))
    await each(chunks, post, concurrency)


async def post_orders(api: Api, orders: list[Order], report: LoadReport, concurrency: int) -> None:
    async def post(order: Order) -> None:
        # An order's own posts go in sequence: created, paid, then cancelled or refunds.
        replayed = False
        for body in order.status_bodies():
            status, _ = await api.call("POST", "/v1/orders", body)
            replayed = replayed or status == 200
        if order.refund is not None:
            await api.call("POST", f"/v1/orders/{order.order_id}/refunds", order.refund_body())
            report.refunds += 1
            report.full_refunds += order.refund.full
        report.orders += 1
        report.orders_replayed += replayed
        report.cancelled += order.cancelled_us is not None

    await each(orders, post, concurrency)


async def load(
    data: Month,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    *,
    concurrency: int = 4,
) -> LoadReport:
    """Post ``data``: catalog, tenant settings and sync, events, then orders and refunds."""
    started = time.perf_counter()
    report = LoadReport(
        seed=data.seed,
        first_day=from_us(data.start_us).astimezone(TZ).date().isoformat(),
        last_day=from_us(data.end_us - DAY).astimezone(TZ).date().isoformat(),
    )
    attr = Api(attribution, "attribution")
    # Thunks, not coroutines: a failing stage must not leave later ones never awaited.
    stages: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("catalog", lambda: load_catalog(Api(catalog, "catalog"), data.world, report, concurrency)),
        ("sync", lambda: prepare_attribution(attr)),
        ("events", lambda: post_events(attr, data.events, report, concurrency)),
        ("orders", lambda: post_orders(attr, data.orders, report, concurrency)),
    ]
    for name, stage in stages:
        mark = time.perf_counter()
        await stage()
        report.timings[name] = time.perf_counter() - mark
    report.gmv = money(sum((o.revenue for o in data.orders), Decimal(0)))
    report.seconds = time.perf_counter() - started
    return report


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    return min(float(value), 30.0) if value.isdigit() else default
