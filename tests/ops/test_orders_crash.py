"""Crash safety of orders: SIGKILL the attribution service while a shop posts touches and orders.

A client posts, for each order, the buyer's touches and then the order (paid; every fifth
one then cancelled), retrying whatever it got no answer for (same ids, same bodies) until it
gets one. A killer thread SIGKILLs the service at seeded random moments and restarts it; with
the ingest buffer on, the buffer's writer (its JetStream consumer) runs in the service and
dies with it, so posts it had pulled come back only after the ack wait, behind the ones sent
after them. Afterwards every order must be stored exactly once, in its last status, with
every status post once, and its credits under every model must equal those of a replay: the
same posts, in the same order, sent once each to a service that was never killed. Runs on
SQLite and PostgreSQL, direct and buffered.

``test_a_cancel_written_before_its_paid_waits_for_it`` pins the case the kills found: the
writer meets an order's ``cancelled`` before its ``paid``.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.attribution.app import MIGRATIONS
from shared.db import sync_url
from tests.conftest import DatabaseFactory
from tests.nats_support import NATS_URL
from tests.ops import crashing
from tests.ops.conftest import EVENT_TIME, Launcher, bearer, token
from tests.ops.crashing import caught_up, started_quietly

pytestmark = pytest.mark.ops

TENANT = "t-orders-crash"
SEEDS = {"sqlite": 20240601, "postgres": 20240602}
ORDERS_AFTER_LAST_KILL = 20
DEADLINE_SECONDS = 90.0 + crashing.SECONDS_PER_KILL * crashing.KILLS
BUYERS = 400
SCOPES = ("events:write", "orders:write", "reports:read")


def touches(n: int) -> list[dict[str, Any]]:
    user = f"u-{n % BUYERS}"
    at = EVENT_TIME + dt.timedelta(seconds=n)
    return [
        {
            "event_id": f"t-{n}-{kind}",
            "type": kind,
            "occurred_at": (at + dt.timedelta(seconds=offset)).isoformat(),
            "user_id": user,
            "content_id": f"c-{(n + offset) % 7}",
            "product_id": f"p-{n % 3}",
            "platform": "douyin",
        }
        for offset, kind in enumerate(("view", "click"))
    ]


def order(n: int, status: str) -> dict[str, Any]:
    paid = EVENT_TIME + dt.timedelta(seconds=n + 30)
    return {
        "order_id": f"o-{n}",
        "status": status,
        "occurred_at": (paid + dt.timedelta(seconds=5 if status == "cancelled" else 0)).isoformat(),
        "currency": "CNY",
        "user_id": f"u-{n % BUYERS}",
        "items": [{"product_id": f"p-{n % 3}", "quantity": 1 + n % 2, "unit_price": "99.00"}],
    }


def statuses(n: int) -> tuple[str, ...]:
    return ("paid", "cancelled") if n % 5 == 0 else ("paid",)


def posts(n: int) -> list[tuple[str, dict[str, Any]]]:
    """The posts of the n-th order, in the order they are sent."""
    sent: list[tuple[str, dict[str, Any]]] = [("/v1/events", {"events": touches(n)})]
    return sent + [("/v1/orders", order(n, status)) for status in statuses(n)]


@dataclass(frozen=True)
class Stored:
    """What a database holds of the tenant, comparable across databases."""

    orders: dict[str, tuple[str, ...]]  # order id -> (status, revenue, gross, line count)
    credits: dict[str, list[tuple[Any, ...]]]  # order id -> its credits under every model
    posts: Counter[tuple[str, str]]  # (order id, status) -> status posts stored
    events: Counter[str]  # event id -> rows
    refused: list[str]  # order posts the buffer's writer could not apply


def stored(database_url: str) -> Stored:
    engine = create_engine(sync_url(database_url))
    tenant = {"t": TENANT}
    try:
        with engine.connect() as conn:
            orders = conn.execute(
                text(
                    "SELECT o.order_id, o.status, o.revenue, o.gross_revenue, count(l.line_no) "
                    "FROM orders o LEFT JOIN order_lines l ON l.tenant_id = o.tenant_id "
                    "AND l.order_id = o.order_id WHERE o.tenant_id = :t "
                    "GROUP BY o.order_id, o.status, o.revenue, o.gross_revenue"
                ),
                tenant,
            ).all()
            credits = conn.execute(
                text(
                    "SELECT order_id, model, position, product_id, content_id, event_id, touch, "
                    "weight, amount, order_share FROM credits WHERE tenant_id = :t "
                    "ORDER BY order_id, model, position"
                ),
                tenant,
            ).all()
            posts = conn.execute(
                text(
                    "SELECT order_id, status, count(*) FROM order_status_posts "
                    "WHERE tenant_id = :t GROUP BY order_id, status"
                ),
                tenant,
            ).all()
            events = conn.execute(
                text(
                    "SELECT event_id, count(*) FROM events WHERE tenant_id = :t GROUP BY event_id"
                ),
                tenant,
            ).all()
            refused = conn.execute(
                text("SELECT event_id FROM rejected_events WHERE tenant_id = :t ORDER BY event_id"),
                tenant,
            ).all()
    finally:
        engine.dispose()
    by_order: dict[str, list[tuple[Any, ...]]] = {}
    for row in credits:
        by_order.setdefault(row[0], []).append(
            (*(str(v) for v in row[1:7]), round(row[7], 9), str(row[8]), round(row[9], 9))
        )
    return Stored(
        orders={row[0]: tuple(str(v) for v in row[1:]) for row in orders},
        credits=by_order,
        posts=Counter({(o, s): int(count) for o, s, count in posts}),
        events=Counter({event_id: int(count) for event_id, count in events}),
        refused=[row[0] for row in refused],
    )


def replayed(launcher: Launcher, make_database: DatabaseFactory, orders: int) -> Stored:
    """The same posts, once each and in order, on a fresh database and a service never killed
    (direct: the replay is the reference, not another buffered run)."""
    replay_url = make_database(MIGRATIONS)
    reference = started_quietly(launcher, replay_url, {"ATTRIBUTION_INGEST_BUFFER": ""})
    with httpx.Client(base_url=reference.url, timeout=30.0) as client:
        for n in range(orders):
            for path, body in posts(n):
                answer = client.post(path, json=body, headers=bearer(token(TENANT, *SCOPES)))
                assert answer.status_code in (200, 201), answer.text
    reference.stop()
    return stored(replay_url)


def test_sigkill_keeps_every_order_once_with_its_replayed_attribution(
    db_backend: str, make_database: DatabaseFactory, launcher: Launcher, buffered: str | None
) -> None:
    database_url = make_database(MIGRATIONS)
    env: dict[str, str] = {}
    if buffered is not None:
        env = {"ATTRIBUTION_INGEST_BUFFER": NATS_URL, "ATTRIBUTION_INGEST_STREAM": buffered}
    mode = "buffered" if buffered else "direct"
    accepted = (202,) if buffered else (200, 201)
    service = started_quietly(launcher, database_url, env)
    headers = bearer(token(TENANT, *SCOPES))
    retries = crashing.Retries()
    killer = crashing.Killer(service, random.Random(SEEDS[db_backend]), crashing.KILLS)
    started = time.monotonic()
    killer.start()
    orders = after_last_kill = 0
    try:
        with httpx.Client(base_url=service.url, timeout=30.0) as client:
            while after_last_kill < ORDERS_AFTER_LAST_KILL:
                assert time.monotonic() - started < DEADLINE_SECONDS, "crash test too slow"
                assert killer.error is None, killer.error
                for path, body in posts(orders):
                    crashing.post_until_answered(client, path, body, headers, retries, accepted)
                orders += 1
                if killer.finished():
                    after_last_kill += 1
    finally:
        killer.stop()
    assert killer.error is None, killer.error
    assert killer.done == crashing.KILLS
    service.kill()  # a last crash, then the database is the judge
    service.start()
    service.wait_ready()
    if buffered is not None:
        with httpx.Client(base_url=service.url, timeout=30.0) as client:
            caught_up(client, headers)
    crashed_seconds = time.monotonic() - started
    # One embedded analytic store per data directory: the reference takes the folder over.
    service.stop()
    found = stored(database_url)
    replay = replayed(launcher, make_database, orders)

    order_ids = [f"o-{n}" for n in range(orders)]
    sent_posts = {(f"o-{n}", status) for n in range(orders) for status in statuses(n)}
    sent_events = {event["event_id"] for n in range(orders) for event in touches(n)}
    last_status = {f"o-{n}": statuses(n)[-1] for n in range(orders)}
    exactly_once = [
        o
        for o in order_ids
        if o in found.orders
        and found.orders[o][0] == last_status[o]
        and all(found.posts[(o, s)] == 1 for s in statuses(int(o[2:])))
    ]
    equal_replay = [
        o
        for o in order_ids
        if o in found.orders
        and found.orders[o] == replay.orders.get(o)
        and found.credits.get(o) == replay.credits.get(o)
    ]
    lost_posts = sorted(sent_posts - set(found.posts))
    lost_events = sorted(sent_events - set(found.events))
    duplicated = sorted(k for k, n in found.posts.items() if n > 1) + sorted(
        k for k, n in found.events.items() if n > 1
    )
    unknown = sorted(set(found.orders) - set(order_ids)) + sorted(set(found.events) - sent_events)
    cancelled = sum(1 for row in found.orders.values() if row[0] == "cancelled")
    print(
        f"\n[orders crash/{db_backend}/{mode}] kills={killer.done} (+1 final), "
        f"restarts={service.starts - 1}, orders sent={orders} ({cancelled} cancelled), "
        f"status posts={len(sent_posts)}, touches={len(sent_events)}, "
        f"exactly once={len(exactly_once)}, attribution equal to replay={len(equal_replay)}, "
        f"lost={len(lost_posts) + len(lost_events)}, duplicated={len(duplicated)}, "
        f"unknown={len(unknown)}, refused by the writer={len(found.refused)}, "
        f"posts={retries.posts}, cut off by a kill={retries.cut_off}, "
        f"refused while down={retries.refused}, answered after retries={retries.retried}, "
        f"credits={sum(map(len, found.credits.values()))} "
        f"(replay {sum(map(len, replay.credits.values()))}), {crashed_seconds:.1f}s"
    )
    assert not lost_posts, f"acknowledged status posts missing: {lost_posts[:5]}"
    assert not lost_events, f"acknowledged touches missing: {lost_events[:5]}"
    assert not duplicated, f"stored twice: {duplicated[:5]}"
    assert not unknown, f"stored but never sent: {unknown[:5]}"
    assert not found.refused, f"posts the writer refused: {found.refused[:5]}"
    assert len(exactly_once) == orders, sorted(set(order_ids) - set(exactly_once))[:5]
    assert found.credits, "no credits at all: the touches never matched the orders"
    differing = [(o, found.orders.get(o), replay.orders.get(o)) for o in order_ids]
    assert len(equal_replay) == orders, [d for d in differing if d[0] not in equal_replay][:5]
    assert found.orders == replay.orders
    assert found.credits == replay.credits


def test_a_cancel_written_before_its_paid_waits_for_it(
    make_database: DatabaseFactory, launcher: Launcher, stream: str
) -> None:
    """What a kill does to the writer, without the kill: the broker holds an order's
    ``cancelled`` ahead of its ``paid`` (as when the ``paid`` a killed writer had pulled comes
    back after the ack wait). The writer must hold the cancel back until the ``paid`` is
    written, not refuse it."""
    database_url = make_database(MIGRATIONS)
    env = {"ATTRIBUTION_INGEST_BUFFER": NATS_URL, "ATTRIBUTION_INGEST_STREAM": stream}
    headers = bearer(token(TENANT, *SCOPES))
    front = started_quietly(launcher, database_url, env | {"ATTRIBUTION_INGEST_WRITER": "false"})
    with httpx.Client(base_url=front.url, timeout=30.0) as client:
        for path, body in [
            ("/v1/orders", order(1, "cancelled")),
            ("/v1/events", {"events": touches(1)}),
            ("/v1/orders", order(1, "paid")),
        ]:
            answer = client.post(path, json=body, headers=headers)
            assert answer.status_code == 202, answer.text
    front.stop()
    writer = started_quietly(launcher, database_url, env)
    with httpx.Client(base_url=writer.url, timeout=30.0) as client:
        caught_up(client, headers)
        final = client.get("/v1/orders/o-1", headers=headers)
    assert final.status_code == 200, final.text
    found = stored(database_url)
    assert found.refused == []
    status, revenue, gross, _ = found.orders["o-1"]
    assert status == "cancelled"
    assert (Decimal(revenue), Decimal(gross)) == (Decimal(0), Decimal("198.00"))
    assert found.posts == Counter({("o-1", "paid"): 1, ("o-1", "cancelled"): 1})
    assert final.json()["status"] == "cancelled"
