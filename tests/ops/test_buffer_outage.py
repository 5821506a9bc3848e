"""A PostgreSQL outage with the ingest buffer on: every post answered 202, none lost.

The same throwaway cluster as the plain outage test (stopped hard, then restarted) under a
service whose posts go through NATS JetStream. While the database is down, events keep being
answered 202 (the broker holds them) and the lag grows; once it is back, the writer commits
everything, exactly once, without a restart.
"""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from services.launcher import Server, migrate
from tests.nats_support import NATS_URL
from tests.ops.conftest import Launcher, PgCluster, bearer, make_events, token
from tests.ops.test_db_outage import TENANT, stored_count, wait_until

pytestmark = pytest.mark.ops

OUTAGE_SECONDS = 10.0
CATCH_UP_SECONDS = 60.0


@pytest.mark.postgres
def test_buffered_posts_ride_out_a_database_outage(
    pg_cluster: PgCluster, launcher: Launcher, stream: str
) -> None:
    with psycopg.connect(pg_cluster.url("postgres", driver="psycopg").replace("+psycopg", "")) as c:
        c.autocommit = True
        c.execute("CREATE DATABASE attribution")
    service: Server = launcher.service(
        "attribution",
        database_url=migrate("attribution", pg_cluster.url("attribution")),
        extra_env={"ATTRIBUTION_INGEST_BUFFER": NATS_URL, "ATTRIBUTION_INGEST_STREAM": stream},
    )
    service.start()
    service.wait_ready()
    headers = bearer(token(TENANT, "events:write", "reports:read"))
    posted = 0

    def post(client: httpx.Client) -> httpx.Response:
        nonlocal posted
        answer = client.post(
            "/v1/events", json={"events": make_events("buffered", posted, 10)}, headers=headers
        )
        assert answer.status_code == 202, f"{answer.status_code}: {answer.text}"
        assert answer.json()["accepted"] == 10
        posted += 10
        return answer

    def pending(client: httpx.Client) -> int:
        answer = client.get("/v1/ingest/lag", headers=headers)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["pending"])

    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        for _ in range(3):
            post(client)
        wait_until(lambda: pending(client) == 0, CATCH_UP_SECONDS, "the writer before the stop")
        assert stored_count(pg_cluster) == 30

        pg_cluster.stop("immediate")
        outage_started = time.monotonic()
        during = 0
        while time.monotonic() - outage_started < OUTAGE_SECONDS:
            post(client)
            during += 1
            time.sleep(0.2)
        behind = pending(client)
        assert behind >= 10 * during - 10, f"{behind} pending after {during} posts"
        assert service.alive(), "the service died with its database"

        pg_cluster.start()
        restarted = time.monotonic()
        wait_until(lambda: pending(client) == 0, CATCH_UP_SECONDS, "the writer after the restart")
        caught_up_in = time.monotonic() - restarted
        post(client)
        wait_until(lambda: pending(client) == 0, CATCH_UP_SECONDS, "the writer after recovery")
        assert service.starts == 1, "the service was restarted"
    assert stored_count(pg_cluster) == posted, "events lost or duplicated in the outage"
    print(
        f"\n[buffered outage] {during} posts ({10 * during} events) during a "
        f"{OUTAGE_SECONDS:.0f}s outage all answered 202; {behind} pending at the restart, "
        f"written {caught_up_in:.2f}s after PostgreSQL came back; {posted} stored, 0 lost"
    )
