"""Random funnel data sets posted through the public APIs, and a brute-force funnel reference.

A *world* is one tenant: a small catalog (two accounts on two platforms, videos and a live
stream, products, ads), a few hundred events of a handful of users and a few orders, all
posted through ``PUT`` (catalog), ``POST /v1/sync``, ``POST /v1/events`` and
``POST /v1/orders``. The reference reads nothing from the database: it knows the events it
generated and the catalog it created; of the orders it takes what the API answers
(``GET /v1/orders/{id}`` and their ``last_touch`` attribution).

:func:`reference` evaluates the funnel's definition
(``services.attribution.funnels.engine``) literally, written independently of the engine and
of the SQL: it enumerates every valid chain of distinct items (events or orders) of a user
by depth-first search, takes the deepest level and the chosen chain (latest start, then
earliest later steps), and builds each breakdown value's funnel by allowing only items
having that value as the first step. An item's dimensions are *sets* (an order has those of
all its last-touch credits), and a filter matches when its value is in the set.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

import httpx
import time_machine

from tests.conftest import auth

PROBLEM_JSON = "application/problem+json"
S = 1_000_000  # microseconds per second
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: The services' clock while the data is posted and queried (ingest refuses events more than
#: a few minutes ahead of it): a fixed moment, so every run sees the same instants.
NOW = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)

ACCOUNTS = {"acc-d": "douyin", "acc-t": "tiktok"}
CONTENTS = {  # id -> (kind, account)
    "c1": ("video", "acc-d"),
    "c2": ("live", "acc-d"),
    "c3": ("video", "acc-t"),
}
UNKNOWN_CONTENT = "c9"  # never created in the catalog: no account, kind or account platform
PRODUCTS = ("p1", "p2")
ADS = {"ad1": "c1", "ad2": "c3"}
LINKS = (("c1", "p1"), ("c3", "p2"), ("c2", "p1"))

EVENT_TYPES = (
    "impression",
    "view",
    "view_complete",
    "like",
    "share",
    "click",
    "add_to_cart",
    "follow",
    "live_enter",
    "live_exit",
)
TYPE_WEIGHTS = (4, 4, 1, 1, 1, 3, 1, 1, 1, 1)  # impressions, views and clicks are common
FILTER_VALUES: dict[str, tuple[str, ...]] = {
    "content_id": ("c1", "c2", "c3", UNKNOWN_CONTENT),
    "ad_id": ("ad1", "ad2"),
    "product_id": PRODUCTS,
    "platform": ("douyin", "tiktok", "instagram"),
    "account_id": ("acc-d", "acc-t"),
    "content_kind": ("video", "live"),
}
BREAKDOWNS = ("platform", "content_id", "ad_id", "account_id", "content_kind")
GRID_SECONDS = 10
SLOTS = 24  # events fall on SLOTS grid points (plus or minus a microsecond)


def to_us(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * S + delta.microseconds


def iso(value: dt.datetime) -> str:
    return value.isoformat()


@dataclass(frozen=True)
class Item:
    """One event or one paid order of a user, as the reference sees it."""

    user: str
    t: int  # epoch microseconds
    type: str  # event type, or "order"
    dims: dict[str, frozenset[str]]
    id: str = ""  # event or order id: orders a user's items of equal time


@dataclass
class World:
    tenant: str
    token: str  # admin of the tenant
    t0: dt.datetime
    items: list[Item] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)

    def at(self, slot: int, micros: int = 0) -> dt.datetime:
        return self.t0 + dt.timedelta(seconds=slot * GRID_SECONDS, microseconds=micros)


# --------------------------------------------------------------------------- asking


async def post_json(
    client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any], expect: int = 200
) -> Any:
    """The JSON answer of ``POST path``, which must have the status ``expect``."""
    response = await client.post(path, json=body, headers=auth(token))
    assert response.status_code == expect, response.text
    return response.json()


async def refusal(
    client: httpx.AsyncClient, token: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The problem+json 422 answer of ``POST path`` to ``body``."""
    response = await client.post(path, json=body, headers=auth(token))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem: dict[str, Any] = response.json()
    return problem


def assert_names(problem: dict[str, Any], field: str, words: list[str]) -> None:
    """One of the problem's errors names ``field`` and its detail says every one of ``words``."""
    assert field in [e["field"] for e in problem["errors"]], problem
    for word in words:
        assert word in problem["detail"], (word, problem["detail"])


# --------------------------------------------------------------------------- building


def fixed_clock() -> time_machine.travel:
    """The clock of tests posting worlds: :data:`NOW`, then running on."""
    return time_machine.travel(NOW, tick=True)


async def put_catalog(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, token: str
) -> None:
    headers = auth(token)
    puts: list[tuple[str, dict[str, Any]]] = [
        *(
            (f"/v1/accounts/{a}", {"platform": platform, "handle": f"@{a}"})
            for a, platform in ACCOUNTS.items()
        ),
        *(
            (f"/v1/products/{p}", {"title": p, "price": "10.00", "currency": "CNY"})
            for p in PRODUCTS
        ),
        *(
            (f"/v1/contents/{c}", {"kind": kind, "account_id": account, "title": c})
            for c, (kind, account) in CONTENTS.items()
        ),
        *((f"/v1/contents/{c}/products/{p}", {"placement": "product_card"}) for c, p in LINKS),
        ("/v1/campaigns/camp", {"name": "Campaign"}),
        *(
            (
                f"/v1/ads/{ad}",
                {"campaign_id": "camp", "content_id": content, "format": "native"},
            )
            for ad, content in ADS.items()
        ),
    ]
    for path, body in puts:
        response = await catalog.put(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
    response = await attribution.post("/v1/sync", headers=headers)
    assert response.status_code == 200, response.text


def event_dims(event: dict[str, Any]) -> dict[str, frozenset[str]]:
    content = event.get("content_id")
    kind, account = CONTENTS.get(content, (None, None)) if content else (None, None)
    platform = event.get("platform") or (ACCOUNTS[account] if account else None)
    values = {
        "content_id": content,
        "ad_id": event.get("ad_id"),
        "product_id": event.get("product_id"),
        "platform": platform,
        "account_id": account,
        "content_kind": kind,
    }
    return {k: frozenset([v]) if v is not None else frozenset() for k, v in values.items()}


def random_events(
    rng: random.Random, t0: dt.datetime, users: list[str], count: int, slots: int
) -> list[dict[str, Any]]:
    events = []
    for i in range(count):
        event_type = rng.choices(EVENT_TYPES, weights=TYPE_WEIGHTS)[0]
        micros = rng.choice((0, 0, 0, 0, 1, 999_999))  # grid points, and 1 µs beside them
        when = t0 + dt.timedelta(seconds=rng.randrange(slots) * GRID_SECONDS, microseconds=micros)
        event: dict[str, Any] = {
            "event_id": f"e{i}",
            "type": event_type,
            "occurred_at": iso(when),
            "user_id": rng.choice(users),
        }
        content = rng.choice((*CONTENTS, *CONTENTS, UNKNOWN_CONTENT))
        if event_type == "add_to_cart":
            event["product_id"] = rng.choice(PRODUCTS)
            if rng.random() < 0.5:
                event["content_id"] = content
        elif event_type == "follow":
            if rng.random() < 0.5:
                event["content_id"] = content
        else:
            event["content_id"] = content
            if rng.random() < 0.3:
                event["product_id"] = rng.choice(PRODUCTS)
        if rng.random() < 0.3:
            event["ad_id"] = rng.choice(tuple(ADS))
        if rng.random() < 0.25:
            event["platform"] = rng.choice(("douyin", "tiktok", "instagram"))
        events.append(event)
    return events


def event_at(
    when: dt.datetime, event_id: str, kind: str, user: str, content: str = "c1", **extra: Any
) -> dict[str, Any]:
    """An event body of ``kind`` by ``user`` on ``content`` at ``when``; ``extra`` fields too."""
    return {
        "event_id": event_id,
        "type": kind,
        "occurred_at": iso(when),
        "user_id": user,
        "content_id": content,
        **extra,
    }


async def post_events(
    attribution: httpx.AsyncClient, headers: dict[str, str], events: list[dict[str, Any]]
) -> None:
    for start in range(0, len(events), 1000):
        response = await attribution.post(
            "/v1/events", json={"events": events[start : start + 1000]}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text


async def post_order(
    attribution: httpx.AsyncClient,
    headers: dict[str, str],
    order_id: str,
    status: str,
    when: dt.datetime,
    user: str,
    products: list[str],
) -> None:
    body = {
        "order_id": order_id,
        "status": status,
        "occurred_at": iso(when),
        "user_id": user,
        "currency": "CNY",
        "items": [{"product_id": p, "quantity": 1, "unit_price": "10.00"} for p in products],
    }
    response = await attribution.post("/v1/orders", json=body, headers=headers)
    assert response.status_code == 201, response.text


async def order_item(
    attribution: httpx.AsyncClient,
    headers: dict[str, str],
    order_id: str,
    events_by_id: dict[str, dict[str, Any]],
) -> Item | None:
    """The reference's view of an order, from what the API says about it."""
    response = await attribution.get(f"/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    order = response.json()
    if order["paid_at"] is None or order["buyer_id"] is None:
        return None
    response = await attribution.get(
        f"/v1/orders/{order_id}/attribution", params={"model": "last_touch"}, headers=headers
    )
    assert response.status_code == 200, response.text
    dims: dict[str, set[str]] = {key: set() for key in FILTER_VALUES}
    dims["product_id"] = {line["product_id"] for line in order["lines"]}
    for credit in response.json()["credits"]:
        touch = events_by_id[credit["event_id"]]
        credit_dims = event_dims(
            {
                "content_id": credit["content_id"],
                "ad_id": credit["ad_id"],
                "platform": touch.get("platform"),
            }
        )
        for key in ("content_id", "ad_id", "platform", "account_id", "content_kind"):
            dims[key] |= credit_dims[key]
    paid_at = dt.datetime.fromisoformat(order["paid_at"].replace("Z", "+00:00"))
    return Item(
        order["buyer_id"],
        to_us(paid_at),
        "order",
        {k: frozenset(v) for k, v in dims.items()},
        order_id,
    )


async def build_world(
    rng: random.Random,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    tenant: str,
    token: str,
    *,
    events: int = 300,
    users: int = 6,
    slots: int = SLOTS,
    orders: int = 8,
) -> World:
    """Creates the catalog, posts random events then random orders; returns the world.

    Its events lie three days before :data:`NOW` (run under :func:`fixed_clock`).
    """
    world = World(tenant, token, NOW - dt.timedelta(days=3))
    await put_catalog(catalog, attribution, token)
    user_ids = [f"u{i}" for i in range(users)]
    world.events = random_events(rng, world.t0, user_ids, events, slots)
    await post_events(attribution, world.headers, world.events)
    for event in world.events:
        world.items.append(
            Item(
                event["user_id"],
                to_us(dt.datetime.fromisoformat(event["occurred_at"])),
                event["type"],
                event_dims(event),
                event["event_id"],
            )
        )
    events_by_id = {e["event_id"]: e for e in world.events}
    for i in range(rng.randrange(orders + 1)):
        order_id = f"o{i}"
        user = rng.choice(user_ids)
        when = world.at(rng.randrange(slots // 3, slots + 2), rng.choice((0, 0, 1)))
        products = rng.sample(PRODUCTS, rng.randint(1, 2))
        fate = rng.choice(("paid", "paid", "cancelled", "created"))
        if fate == "created":
            await post_order(attribution, world.headers, order_id, "created", when, user, products)
        else:
            await post_order(attribution, world.headers, order_id, "paid", when, user, products)
        if fate == "cancelled":
            later = when + dt.timedelta(seconds=5)
            await post_order(
                attribution, world.headers, order_id, "cancelled", later, user, products
            )
        world.order_ids.append(order_id)
        item = await order_item(attribution, world.headers, order_id, events_by_id)
        if item is not None:
            world.items.append(item)
    return world


def random_query(rng: random.Random, world: World, slots: int = SLOTS) -> dict[str, Any]:
    pool = ("impression", "view", "click", "click", "like", "add_to_cart", "order", "order")
    n = rng.choice((2, 2, 3, 3, 4))
    steps: list[dict[str, Any]] = []
    for _ in range(n):
        step: dict[str, Any] = {"type": rng.choice(pool)}
        if rng.random() < 0.2:
            key = rng.choice(tuple(FILTER_VALUES))
            step["filters"] = {key: rng.choice(FILTER_VALUES[key])}
        steps.append(step)
    start = rng.randrange(slots // 2)
    end = rng.randint(start + 1, slots + 1)
    query: dict[str, Any] = {
        "steps": steps,
        "from": iso(world.at(start)),
        "to": iso(world.at(end)),
    }
    if rng.random() < 0.85:  # else the default, 7 days
        query["window_seconds"] = rng.choice((1, 10, 30, 60, 100, 150, 250))
    if rng.random() < 0.3:
        key = rng.choice(tuple(FILTER_VALUES))
        query["filters"] = {key: rng.choice(FILTER_VALUES[key])}
    if rng.random() < 0.6:
        query["breakdown"] = rng.choice(BREAKDOWNS)
    return query


# --------------------------------------------------------------------------- reference


def mark_optional(rng: random.Random, query: dict[str, Any], chance: float) -> list[int]:
    """Maybe (``chance``) marks middle steps optional; returns the indexes of the required ones.

    Only in an ordered funnel of three steps or more; each middle step is optional at odds 0.6.
    """
    steps = query["steps"]
    n = len(steps)
    if query["order"] != "unordered" and n > 2 and rng.random() < chance:
        for k in range(1, n - 1):
            if rng.random() < 0.6:
                steps[k]["optional"] = True
    return [k for k in range(n) if not steps[k].get("optional")]


def _matches(item: Item, step_type: str, filters: dict[str, str]) -> bool:
    if item.type != step_type:
        return False
    return all(value in item.dims[key] for key, value in filters.items())


def step_masks(
    items: list[Item], specs: list[dict[str, Any]], global_filters: dict[str, str]
) -> list[int]:
    """Per item, the bit set of the ``specs`` (steps or exclusions) it matches."""
    return [
        sum(
            1 << k
            for k, spec in enumerate(specs)
            if _matches(item, spec["type"], global_filters)
            and _matches(item, spec["type"], spec.get("filters") or {})
        )
        for item in items
    ]


def _chosen_chain(
    items: list[Item],
    masks: list[int],
    n: int,
    window: int,
    lo: int,
    hi: int,
    can_start: list[bool],
) -> tuple[int, ...] | None:
    """The deepest valid chain with the smallest key (-t1, t2, ..., tD), by enumeration."""
    best: tuple[int, ...] | None = None

    def better(chain: tuple[int, ...]) -> bool:
        if best is None or len(chain) > len(best):
            return True
        if len(chain) < len(best):
            return False
        return (-chain[0], *chain[1:]) < (-best[0], *best[1:])

    def extend(used: list[int], times: tuple[int, ...]) -> None:
        nonlocal best
        if better(times):
            best = times
        level = len(times)
        if level == n:
            return
        for j, item in enumerate(items):
            if (
                masks[j] >> level & 1
                and j not in used
                and item.t >= times[-1]
                and item.t - times[0] <= window
            ):
                extend([*used, j], (*times, item.t))

    for i, item in enumerate(items):
        if masks[i] & 1 and lo <= item.t < hi and can_start[i]:
            extend([i], (item.t,))
    return best


def _stats(step_types: list[str], chains: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    users = [sum(1 for c in chains if len(c) > k) for k in range(len(step_types))]
    rows = []
    for k, step_type in enumerate(step_types):
        gaps = [c[k] - c[k - 1] for c in chains if len(c) > k] if k else []
        rows.append(
            {
                "type": step_type,
                "users": users[k],
                "conversion_from_start": users[k] / users[0] if users[0] else None,
                "conversion_from_previous": (
                    None if k == 0 else users[k] / users[k - 1] if users[k - 1] else None
                ),
                "median_seconds_from_previous": (statistics.median(gaps) / S if gaps else None),
                "average_seconds_from_previous": (statistics.fmean(gaps) / S if gaps else None),
                "dropped_off": users[k - 1] - users[k] if k else None,
            }
        )
    return rows


def reference(items: list[Item], query: dict[str, Any]) -> dict[str, Any]:
    steps = query.get("steps") or [{"type": t} for t in ("impression", "view", "click", "order")]
    n = len(steps)
    window = query.get("window_seconds", 7 * 86400) * S
    lo = to_us(dt.datetime.fromisoformat(query["from"]))
    hi = to_us(dt.datetime.fromisoformat(query["to"]))
    global_filters = query.get("filters") or {}
    breakdown = query.get("breakdown")
    per_user: dict[str, list[Item]] = {}
    for item in items:
        per_user.setdefault(item.user, []).append(item)

    overall: list[tuple[int, ...]] = []
    by_value: dict[str, list[tuple[int, ...]]] = {}
    for user_items in per_user.values():
        masks = step_masks(user_items, steps, global_filters)
        everyone = [True] * len(user_items)
        chain = _chosen_chain(user_items, masks, n, window, lo, hi, everyone)
        if chain is not None:
            overall.append(chain)
        if breakdown:
            values = sorted({v for item in user_items for v in item.dims[breakdown]})
            for value in values:
                can_start = [value in item.dims[breakdown] for item in user_items]
                chain = _chosen_chain(user_items, masks, n, window, lo, hi, can_start)
                if chain is not None:
                    by_value.setdefault(value, []).append(chain)
    types = [step["type"] for step in steps]
    rows: list[dict[str, Any]] = [
        {"value": v, "steps": _stats(types, chains)} for v, chains in by_value.items()
    ]
    rows.sort(key=lambda row: (-row["steps"][0]["users"], row["value"]))
    return {"steps": _stats(types, overall), "breakdown": rows}
