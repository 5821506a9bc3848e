"""Crash safety of the analytic store: SIGKILL the service mid-ingest again and again, then
compare funnels answered from ClickHouse with a brute-force count over the system of record.

A client posts batches (deterministic ids, each retried until answered, see ``test_crash``)
while the service is killed at seeded random moments and restarted, 20 times. At the end the
funnels ``view → view → view`` (distinct events: a user reaches step k with k views, so an
event copied twice would lift a user a step) and ``impression → view → click`` must give
exactly the users a brute force over the database's rows gives: none missing, none counted
twice. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.attribution.app import MIGRATIONS
from shared.db import sync_url
from tests.conftest import DatabaseFactory
from tests.ops.conftest import EVENT_TIME, Launcher, bearer, token
from tests.ops.crashing import Killer, Retries, post_events, started_quietly

pytestmark = pytest.mark.ops

KILLS = 20
BATCH_SIZE = 100
SEEDS = {"sqlite": 20261206, "postgres": 20261207}
DEADLINE_SECONDS = 240.0  # a guard against hangs
TENANT = "t-analytics-crash"
TYPES = ("impression", "view", "click", "view")
FUNNELS = (("view", "view", "view"), ("impression", "view", "click"))


def events(start: int, count: int) -> list[dict[str, Any]]:
    """Distinct times (a millisecond apart), so the brute force below is a plain scan."""
    return [
        {
            "event_id": f"ac-{n:06d}",
            "type": TYPES[n % len(TYPES)],
            "occurred_at": (EVENT_TIME + dt.timedelta(milliseconds=n)).isoformat(),
            "user_id": f"u-{(n * 7) % 131}",
            "content_id": f"c-{n % 5}",
        }
        for n in range(start, start + count)
    ]


def brute_force(database_url: str, steps: tuple[str, ...]) -> list[int]:
    """Users per step over the stored rows (distinct times, the window holds them all)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT user_id, occurred_at, type FROM events WHERE tenant_id = :t"),
                {"t": TENANT},
            ).all()
    finally:
        engine.dispose()
    by_user: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for user, at, kind in rows:
        by_user[user].append((at, kind))
    reached = [0] * len(steps)
    for items in by_user.values():
        items.sort()
        assert len({at for at, _ in items}) == len(items)
        level = 0
        for _, kind in items:  # earliest match first: exact for distinct times
            if level < len(steps) and kind == steps[level]:
                level += 1
        for k in range(level):
            reached[k] += 1
    return reached


def test_funnels_from_the_analytic_store_survive_repeated_sigkills(
    db_backend: str, make_database: DatabaseFactory, launcher: Launcher
) -> None:
    database_url = make_database(MIGRATIONS)
    service = started_quietly(launcher, database_url)
    headers = bearer(token(TENANT, "events:write", "reports:read"))
    retries = Retries()
    batches = 0
    killer = Killer(service, random.Random(SEEDS[db_backend]), KILLS)
    started = time.monotonic()
    killer.start()
    try:
        with httpx.Client(base_url=service.url, timeout=30.0) as client:
            while killer.is_alive():
                assert time.monotonic() - started < DEADLINE_SECONDS, "crash test too slow"
                batch = events(batches * BATCH_SIZE, BATCH_SIZE)
                body = post_events(client, headers, batch, retries)
                assert body["rejected"] == [], body
                batches += 1
    finally:
        killer.halt.set()
        killer.join(timeout=60)
    assert killer.error is None, killer.error
    assert killer.done == KILLS
    # One more crash right after the last answers, then the restarted service must serve
    # funnels that count every stored event once.
    service.kill()
    service.start()
    service.wait_ready()
    query_range = {
        "from": (EVENT_TIME - dt.timedelta(hours=1)).isoformat(),
        "to": (EVENT_TIME + dt.timedelta(hours=1)).isoformat(),
        "window_seconds": 86_400,
    }
    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        for steps in FUNNELS:
            query = {"steps": [{"type": s} for s in steps], **query_range}
            answer = client.post("/v1/funnels", json=query, headers=headers)
            assert answer.status_code == 200, answer.text
            counted = [step["users"] for step in answer.json()["steps"]]
            expected = brute_force(database_url, steps)
            assert expected[0] > 0
            assert counted == expected, (steps, batches)
