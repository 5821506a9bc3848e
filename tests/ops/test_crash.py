"""Crash safety: SIGKILL the attribution service at random moments while a client posts events.

With the ingest buffer on (``buffered``), the kills take the writer down with the service:
the broker holds what was answered 202, and the restarted writer commits it once.

The client posts batches with deterministic event ids and retries every batch whose answer it
did not get (same ids) until it gets one. A killer thread SIGKILLs the server at seeded random
moments and restarts it. After a final kill and restart, the database must hold every
acknowledged event exactly once and nothing that was never sent. Runs on SQLite and on
PostgreSQL (a fresh database each run).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.attribution.app import MIGRATIONS
from services.launcher import Server
from shared.db import sync_url
from tests.conftest import DatabaseFactory
from tests.nats_support import NATS_URL, delete_stream, require_nats, stream_name
from tests.ops.conftest import Launcher, bearer, make_events, token

pytestmark = pytest.mark.ops

#: SIGKILLs per run: a quick 5 by default, 50 in CI (CLIPFUNNEL_CRASH_KILLS=50 in .ci/run).
KILLS = int(os.environ.get("CLIPFUNNEL_CRASH_KILLS", "5"))
BATCH_SIZE = 200
BATCHES_AFTER_LAST_KILL = 2
SEEDS = {"sqlite": 20240501, "postgres": 20240502}
# A guard against hangs, far above the usual ~1.5 s a kill and restart take.
DEADLINE_SECONDS = 60.0 + 12.0 * KILLS
CATCH_UP_SECONDS = 180.0
TENANT = "t-crash"


@dataclass
class Figures:
    kills: int = 0
    batches: int = 0
    posts: int = 0
    cut_off: int = 0  # posts the kill cut off mid-request (sent, no answer)
    refused: int = 0  # posts refused while the service was down or restarting (or 503)
    retried_batches: int = 0  # batches posted again with the same ids after a lost answer
    retried_duplicates: int = 0  # events a retry found already stored (committed, unanswered)
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)


class Killer(threading.Thread):
    """SIGKILLs the service ``kills`` times at random moments, restarting it after each."""

    def __init__(self, service: Server, rng: random.Random, kills: int) -> None:
        super().__init__(name="killer", daemon=True)
        self.service = service
        self.rng = rng
        self.kills = kills
        self.done = 0
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            while self.done < self.kills:
                if self.halt.wait(self.rng.uniform(0.2, 1.0)):
                    return
                self.service.kill()
                self.done += 1
                self.service.start()
                self.service.wait_ready()
        except BaseException as exc:
            self.error = exc


def started_quietly(
    launcher: Launcher, database_url: str, extra_env: dict[str, str] | None = None
) -> Server:
    """A ready attribution service on this database that logs warnings only (the kills make
    the info lines noise)."""
    env = {"CLIPFUNNEL_LOG_LEVEL": "WARNING", **(extra_env or {})}
    service = launcher.service("attribution", database_url=database_url, extra_env=env)
    service.start()
    service.wait_ready()
    return service


def post_until_answered(
    client: httpx.Client,
    headers: dict[str, str],
    batch: list[dict[str, object]],
    figures: Figures,
    expected_status: int = 200,
) -> dict[str, object]:
    deadline = time.monotonic() + 60
    retried = False
    while True:
        assert time.monotonic() < deadline, "a batch went unanswered for 60 s"
        figures.posts += 1
        try:
            answer = client.post("/v1/events", json={"events": batch}, headers=headers)
        except httpx.ConnectError:
            figures.refused += 1
            retried = True
            time.sleep(0.05)
            continue
        except httpx.TransportError:
            figures.cut_off += 1
            retried = True
            continue
        if answer.status_code == 503:
            figures.refused += 1
            retried = True
            time.sleep(0.05)
            continue
        assert answer.status_code == expected_status, answer.text
        figures.retried_batches += retried
        body: dict[str, object] = answer.json()
        return body


def stored_event_ids(database_url: str) -> Counter[str]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT event_id, count(*) FROM events WHERE tenant_id = :tenant "
                    "GROUP BY event_id"
                ),
                {"tenant": TENANT},
            )
            return Counter({event_id: int(count) for event_id, count in rows})
    finally:
        engine.dispose()


@pytest.fixture(params=[False, True], ids=["direct", "buffered"])
def buffered(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None, or the JetStream stream of a run with the ingest buffer on."""
    if not request.param:
        yield None
        return
    require_nats()
    name = stream_name()
    yield name
    asyncio.run(delete_stream(name))


def caught_up(client: httpx.Client, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + CATCH_UP_SECONDS
    last: object = None
    while True:
        try:
            answer = client.get("/v1/ingest/lag", headers=headers)
            last = answer.json()
            if answer.status_code == 200 and answer.json()["pending"] == 0:
                return
        except httpx.TransportError as exc:
            last = exc
        assert time.monotonic() < deadline, f"the buffer's writer did not catch up: {last}"
        time.sleep(0.1)


def test_sigkill_loses_and_duplicates_nothing(
    db_backend: str,
    make_database: DatabaseFactory,
    launcher: Launcher,
    tmp_path: Path,
    buffered: str | None,
) -> None:
    database_url = make_database(MIGRATIONS)
    env = {}
    if buffered is not None:
        env = {"ATTRIBUTION_INGEST_BUFFER": NATS_URL, "ATTRIBUTION_INGEST_STREAM": buffered}
    accepted_status = 200 if buffered is None else 202
    mode = "buffered" if buffered else "direct"
    service = started_quietly(launcher, database_url, env)
    headers = bearer(token(TENANT, "events:write", "reports:read"))
    figures = Figures()
    killer = Killer(service, random.Random(SEEDS[db_backend]), KILLS)
    started = time.monotonic()
    killer.start()
    after_last_kill = 0
    try:
        with httpx.Client(base_url=service.url, timeout=30.0) as client:
            while after_last_kill < BATCHES_AFTER_LAST_KILL:
                assert time.monotonic() - started < DEADLINE_SECONDS, "crash test too slow"
                assert killer.error is None, killer.error
                kills_before = killer.done
                batch = make_events("crash", figures.batches * BATCH_SIZE, BATCH_SIZE)
                ids = {event["event_id"] for event in batch}
                figures.sent |= ids
                body = post_until_answered(client, headers, batch, figures, accepted_status)
                assert body["rejected"] == [], body
                assert body["accepted"] + body["duplicates"] == BATCH_SIZE, body  # type: ignore[operator]
                figures.retried_duplicates += int(body["duplicates"])  # type: ignore[call-overload]
                figures.acked |= ids
                figures.batches += 1
                if kills_before == KILLS and not killer.is_alive():
                    after_last_kill += 1
    finally:
        killer.halt.set()
        killer.join(timeout=60)
    assert killer.error is None, killer.error
    figures.kills = killer.done
    assert figures.kills == KILLS

    # A final crash and restart, then the database itself is the judge.
    service.kill()
    service.start()
    service.wait_ready()
    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        replay = client.post(
            "/v1/events", json={"events": make_events("crash", 0, BATCH_SIZE)}, headers=headers
        ).json()
        if buffered is not None:
            caught_up(client, headers)
    assert (replay["accepted"], replay["duplicates"]) == (0, BATCH_SIZE), replay
    stored = stored_event_ids(database_url)
    duplicated = {event_id: n for event_id, n in stored.items() if n != 1}
    missing = figures.acked - set(stored)
    unknown = set(stored) - figures.sent
    print(
        f"\n[crash/{db_backend}/{mode}] kills survived={figures.kills} (+1 final), "
        f"restarts={service.starts - 1}, batches={figures.batches}, posts={figures.posts}, "
        f"posts cut off by a kill={figures.cut_off}, refused while down={figures.refused}, "
        f"batches retried={figures.retried_batches}, "
        f"duplicates found by retries={figures.retried_duplicates}, "
        f"events sent={len(figures.sent)}, acked={len(figures.acked)}, stored={len(stored)}, "
        f"duplicated={len(duplicated)}, missing={len(missing)}, unknown={len(unknown)}, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert not duplicated
    assert not missing
    assert not unknown
    # Every sent batch was retried until answered, so everything sent is stored.
    assert set(stored) == figures.sent == figures.acked
