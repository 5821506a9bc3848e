"""``event_daily``: kept by ingest, backfilled by its migration, and read by reports.

Reports count the whole UTC days of a range from ``event_daily`` and the partial days at its
edges from ``events``; every figure must equal a brute-force count over the events posted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from services.attribution.analytics.viewers import ClickHouseViewers
from services.attribution.app import MIGRATIONS
from services.attribution.models import EventDaily
from services.attribution.reports import repository
from services.attribution.reports.viewers import SqlViewers, ViewerCounter
from shared.db import sync_url, to_epoch_us
from shared.migrate import downgrade, upgrade
from tests.conftest import DatabaseFactory, TokenFactory, auth

DAY0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
CONTENTS = ["c-1", "c-2", "c-3"]
ADS = ["ad-1", "ad-2"]
TYPES = ["impression", "view", "view_complete", "like", "click"]


def iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def random_events(rng: random.Random, n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        event: dict[str, Any] = {
            "event_id": f"e-{i}",
            "type": rng.choice(TYPES),
            # 4 days, with times right at midnight now and then
            "occurred_at": DAY0
            + (
                dt.timedelta(days=rng.randrange(4))
                if rng.random() < 0.1
                else dt.timedelta(seconds=rng.uniform(0, 4 * 86_400))
            ),
            "user_id": f"u-{rng.randrange(12)}",
            "content_id": rng.choice(CONTENTS),
        }
        if rng.random() < 0.5:
            event["ad_id"] = rng.choice(ADS)
        roll = rng.random()
        if roll < 0.5:
            event["properties"] = {"watch_seconds": round(rng.uniform(0, 60), 3)}
        elif roll < 0.6:
            event["properties"] = {"watch_seconds": rng.randrange(60)}  # an integer
        elif roll < 0.7:
            event["properties"] = {"watch_seconds": "12"}  # not a number: ignored
        elif roll < 0.75:
            event["properties"] = {"watch_seconds": True}  # not a number either
        events.append(event)
    return events


def on_the_wire(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "occurred_at": iso(event["occurred_at"])}


def watch_value(event: dict[str, Any]) -> float | None:
    seconds = (event.get("properties") or {}).get("watch_seconds")
    if event["type"] in ("view", "view_complete") and type(seconds) in (int, float):
        return float(seconds)
    return None


def brute_force(
    events: list[dict[str, Any]], key: str, lo: dt.datetime, hi: dt.datetime
) -> dict[str, tuple[dict[str, int], float, int, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    watch: dict[str, list[float]] = defaultdict(list)
    viewers: dict[str, set[str]] = defaultdict(set)
    for event in events:
        value = event.get(key)
        if value is None or not lo <= event["occurred_at"] < hi:
            continue
        counts[value][event["type"]] += 1
        seconds = watch_value(event)
        if seconds is not None:
            watch[value].append(seconds)
        if event["type"] == "view":
            viewers[value].add(event["user_id"])
    return {
        value: (dict(per_type), math.fsum(watch[value]), len(watch[value]), len(viewers[value]))
        for value, per_type in counts.items()
    }


def expected_daily(
    events: list[dict[str, Any]], day_key: Callable[[dt.datetime], Any]
) -> dict[tuple[Any, ...], list[Any]]:
    """``event_daily`` by brute force: ``[events, watch_seconds, watch_events]`` per key."""
    expected: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0.0, 0])
    for event in events:
        day = event["occurred_at"].replace(hour=0, minute=0, second=0, microsecond=0)
        row = expected[day_key(day), event["type"], event["content_id"], event.get("ad_id", "")]
        row[0] += 1
        seconds = watch_value(event)
        if seconds is not None:
            row[1] += seconds
            row[2] += 1
    return expected


def assert_same_daily(stored: dict[Any, list[Any]], expected: dict[Any, list[Any]]) -> None:
    assert stored.keys() == expected.keys()
    for key, (count, seconds, watched) in expected.items():
        assert stored[key][0] == count, key
        assert stored[key][1] == pytest.approx(seconds, rel=1e-12, abs=1e-9), key
        assert stored[key][2] == watched, key


async def post(client: httpx.AsyncClient, token: str, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 100):
        response = await client.post(
            "/v1/events",
            json={"events": [on_the_wire(e) for e in events[start : start + 100]]},
            headers=auth(token),
        )
        assert response.status_code == 200, response.text


RANGES = [
    (DAY0, DAY0 + dt.timedelta(days=4)),  # whole days only
    (DAY0 + dt.timedelta(hours=5), DAY0 + dt.timedelta(days=3, hours=7)),  # two edges
    (DAY0 + dt.timedelta(hours=1), DAY0 + dt.timedelta(hours=20)),  # inside one day
    (DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=2, seconds=1)),  # one day + 1 s
    (DAY0 - dt.timedelta(days=2), DAY0 + dt.timedelta(days=9)),  # wider than the data
]


async def test_reports_sums_equal_a_brute_force_count_over_the_events(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    make_token: TokenFactory,
    tenant: str,
) -> None:
    rng = random.Random(7)
    events = random_events(rng, 600)
    token = make_token(tenant, "events:write")
    await post(attribution, token, events)
    # Client retries: a resent batch (and a mix of old and new) adds nothing twice.
    await post(attribution, token, events[:150])
    # Another tenant's events count nowhere here.
    await post(attribution, make_token("someone-else", "events:write"), events[:200])
    rng.shuffle(RANGES)
    for lo, hi in RANGES:
        kinds = (("content_id", TYPES), ("ad_id", ["impression", "view", "click"]))
        for (key, types), counted_in in itertools.product(kinds, ("database", "store")):
            async with attribution_app.state.read_sessionmaker() as session:
                counter: ViewerCounter = (
                    SqlViewers(session)
                    if counted_in == "database"
                    else ClickHouseViewers(attribution_app.state.analytics)
                )
                sums = await repository.event_sums(
                    session,
                    tenant,
                    key=key,
                    start=lo,
                    end=hi,
                    types=types,
                    watch=True,
                    viewers=counter,
                )
            expected = brute_force([e for e in events if e["type"] in types], key, lo, hi)
            assert set(sums) == set(expected), (key, lo, hi)
            for value, (counts, seconds, watched, viewers) in expected.items():
                got = sums[value]
                assert got.counts == counts, (key, value, lo, hi)
                assert got.watch_events == watched, (key, value, lo, hi)
                assert got.watch_seconds == pytest.approx(seconds, rel=1e-12, abs=1e-9)
                assert got.unique_viewers == viewers, (counted_in, key, value, lo, hi)


async def test_ingest_keeps_one_row_per_day_type_content_and_ad(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    make_token: TokenFactory,
    tenant: str,
) -> None:
    events = random_events(random.Random(11), 300)
    token = make_token(tenant, "events:write")
    await post(attribution, token, events[:200])
    await post(attribution, token, events[100:])  # overlaps the first post
    expected = expected_daily(events, lambda day: day)
    async with attribution_app.state.read_sessionmaker() as session:
        rows = (
            await session.execute(select(EventDaily).where(EventDaily.tenant_id == tenant))
        ).scalars()
        stored = {
            (r.day, r.type, r.content_id, r.ad_id): [r.events, r.watch_seconds, r.watch_events]
            for r in rows
        }
    assert_same_daily(stored, expected)


def test_the_migration_rolls_up_events_stored_before_it(make_database: DatabaseFactory) -> None:
    url = make_database(MIGRATIONS)
    engine = create_engine(sync_url(url), poolclass=NullPool)
    sqlite = engine.dialect.name == "sqlite"
    props_sql = ":props" if sqlite else "CAST(:props AS jsonb)"
    events = random_events(random.Random(3), 200)
    # Also an instant before 1970: its day is the floor, not a truncation toward zero.
    events.append(
        {
            **events[0],
            "event_id": "old",
            "occurred_at": dt.datetime(1969, 12, 31, 18, 0, tzinfo=dt.UTC),
        }
    )
    try:
        # Back to before the rollup's revision (and whatever came after it).
        downgrade(MIGRATIONS, url, "0002_covering_indexes")
        with engine.begin() as conn:
            for event in events:
                at = event["occurred_at"]
                props = event.get("properties")
                conn.execute(
                    text(
                        "INSERT INTO events (tenant_id, event_id, type, occurred_at, user_id, "
                        "content_id, ad_id, properties, received_at) VALUES "
                        f"('t', :id, :type, :at, 'u', :content, :ad, {props_sql}, :at)"
                    ),
                    {
                        "id": event["event_id"],
                        "type": event["type"],
                        "at": to_epoch_us(at) if sqlite else at,
                        "content": event["content_id"],
                        "ad": event.get("ad_id"),
                        "props": None if props is None else json.dumps(props),
                    },
                )
        upgrade(MIGRATIONS, url)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT day, type, content_id, ad_id, events, watch_seconds, watch_events "
                    "FROM event_daily"
                )
            ).all()
    finally:
        engine.dispose()
    expected = expected_daily(events, to_epoch_us if sqlite else lambda day: day)
    assert_same_daily({tuple(r[:4]): list(r[4:]) for r in rows}, expected)
