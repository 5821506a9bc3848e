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

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.attribution.app import MIGRATIONS
from services.launcher import Server
from shared.db import sync_url
from tests.conftest import DatabaseFactory
from tests.nats_support import NATS_URL
from tests.ops.conftest import Launcher, bearer, make_events, token
from tests.ops.crashing import (
    KILLS,
    SECONDS_PER_KILL,
    Killer,
    Retries,
    caught_up,
    post_events,
    started_quietly,
)

pytestmark = pytest.mark.ops

BATCH_SIZE = 200
BATCHES_AFTER_LAST_KILL = 2
SEEDS = {"sqlite": 20240501, "postgres": 20240502}
DEADLINE_SECONDS = 60.0 + SECONDS_PER_KILL * KILLS
TENANT = "t-crash"


@dataclass
class Figures(Retries):
    kills: int = 0
    batches: int = 0
    retried_duplicates: int = 0  # events a retry found already stored (committed, unanswered)
    sent: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)


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


def test_sigkill_loses_and_duplicates_nothing(
    db_backend: str,
    make_database: DatabaseFactory,
    launcher: Launcher,
    buffered: str | None,
) -> None:
    database_url = make_database(MIGRATIONS)
    env = {}
    if buffered is not None:
        env = {"ATTRIBUTION_INGEST_BUFFER": NATS_URL, "ATTRIBUTION_INGEST_STREAM": buffered}
    service = started_quietly(launcher, database_url, env)
    mode = "buffered" if buffered else "direct"
    _crash_run(db_backend, database_url, service, (), mode)


def test_sigkill_of_the_service_or_a_separate_writer_loses_and_duplicates_nothing(
    db_backend: str, make_database: DatabaseFactory, launcher: Launcher, stream: str
) -> None:
    """The buffer's writer in a ``clipfunnel serve ingest-worker`` process of its own (the
    service only publishes): each kill takes the service or the writer, at random."""
    database_url = make_database(MIGRATIONS)
    env = {
        "ATTRIBUTION_INGEST_BUFFER": NATS_URL,
        "ATTRIBUTION_INGEST_STREAM": stream,
        "CLIPFUNNEL_LOG_LEVEL": "WARNING",
    }
    service = started_quietly(launcher, database_url, {**env, "ATTRIBUTION_INGEST_WRITER": "false"})
    writer = launcher.ingest_worker(database_url=database_url, extra_env=env)
    writer.start()
    writer.wait_ready()
    _crash_run(db_backend, database_url, service, (writer,), "buffered, separate writer")


def _crash_run(
    db_backend: str, database_url: str, service: Server, others: Sequence[Server], mode: str
) -> None:
    """Post batches while a killer SIGKILLs ``service`` (or one of ``others``) at random
    moments; then every acknowledged event must be stored exactly once."""
    buffered = mode != "direct"
    accepted_status = 202 if buffered else 200
    headers = bearer(token(TENANT, "events:write", "reports:read"))
    figures = Figures()
    killer = Killer(service, random.Random(SEEDS[db_backend]), KILLS, others)
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
                body = post_events(client, headers, batch, figures, accepted_status)
                assert body["rejected"] == [], body
                assert body["accepted"] + body["duplicates"] == BATCH_SIZE, body  # type: ignore[operator]
                figures.retried_duplicates += int(body["duplicates"])  # type: ignore[call-overload]
                figures.acked |= ids
                figures.batches += 1
                if kills_before == KILLS and not killer.is_alive():
                    after_last_kill += 1
    finally:
        killer.stop()
    assert killer.error is None, killer.error
    figures.kills = killer.done
    assert figures.kills == KILLS

    # A final crash and restart of each, then the database itself is the judge.
    for process in (service, *others):
        process.kill()
        process.start()
        process.wait_ready()
    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        replay = client.post(
            "/v1/events", json={"events": make_events("crash", 0, BATCH_SIZE)}, headers=headers
        ).json()
        if buffered:
            caught_up(client, headers)
    assert (replay["accepted"], replay["duplicates"]) == (0, BATCH_SIZE), replay
    stored = stored_event_ids(database_url)
    duplicated = {event_id: n for event_id, n in stored.items() if n != 1}
    missing = figures.acked - set(stored)
    unknown = set(stored) - figures.sent
    print(
        f"\n[crash/{db_backend}/{mode}] kills survived={figures.kills} (+1 final"
        f"{', each' if others else ''}), by process={dict(killer.killed)}, "
        f"restarts={sum(p.starts - 1 for p in (service, *others))}, "
        f"batches={figures.batches}, posts={figures.posts}, "
        f"posts cut off by a kill={figures.cut_off}, refused while down={figures.refused}, "
        f"batches retried={figures.retried}, "
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
