"""The analytic store on a ClickHouse server (clickhouse-connect): the same statements as chdb.

Runs when ``CLIPFUNNEL_TEST_CLICKHOUSE_URL`` (e.g. ``http://default:@127.0.0.1:8123``) answers
a ping; skipped otherwise, saying why. Each statement is tested on chdb in any case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from services.attribution.analytics import store
from services.attribution.analytics.funnels import (
    funnel_counts_statement,
    held_counts_statement,
    last_step_counts_statement,
)
from services.attribution.funnels.planner import FunnelPlan, StepPlan

URL = os.environ.get("CLIPFUNNEL_TEST_CLICKHOUSE_URL")
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _reachable() -> str | None:
    if not URL:
        return "CLIPFUNNEL_TEST_CLICKHOUSE_URL is not set (no ClickHouse server to test against)"
    base = httpx.URL(URL)
    try:
        httpx.get(f"http://{base.host}:{base.port or 8123}/ping", timeout=2.0)
    except httpx.HTTPError as exc:
        return f"ClickHouse at {URL} does not answer: {exc}"
    return None


@pytest.fixture
def server_store() -> Iterator[store.AnalyticStore]:
    reason = _reachable()
    if reason is not None:
        pytest.skip(reason)
    assert URL is not None
    analytic = store.server(URL, f"test_{uuid.uuid4().hex[:16]}")
    try:
        yield analytic
    finally:
        analytic.execute("DROP DATABASE IF EXISTS {db}")


def test_schema_replication_and_funnel_rows_on_a_server(
    server_store: store.AnalyticStore,
) -> None:
    check_statements(server_store)


def test_the_same_check_on_chdb() -> None:
    from tests.conftest import _ANALYTICS_DIR

    check_statements(store.embedded(_ANALYTICS_DIR, f"test_{uuid.uuid4().hex[:16]}"))


def check_statements(server_store: store.AnalyticStore) -> None:
    assert server_store.migrate() == [v for v, _ in store.SCHEMA]
    assert server_store.migrate() == []
    row = {
        "tenant_id": "t",
        "user_id": "u",
        "event_id": "e1",
        "type": "view",
        "content_id": None,
        "product_id": None,
        "ad_id": None,
        "platform": None,
        "seq": 1,
        "t": "2026-03-01 00:00:01.000000",
    }
    click = {**row, "event_id": "e2", "type": "click", "t": "2026-03-01 00:00:02.000000"}
    server_store.insert_rows("events", [row, click])
    server_store.insert_rows("events", [row])  # copied again: still one row
    plan = FunnelPlan(
        tenant_id="t",
        steps=(StepPlan("view", {}), StepPlan("click", {})),
        filters={},
        start=T0,
        end=T0 + dt.timedelta(days=1),
        window=dt.timedelta(days=7),
        breakdown=None,
    )
    rows = server_store.rows(funnel_counts_statement(plan, {}))
    # Overall: nobody stops at step 1, one user reaches step 2 a second after step 1, nobody
    # is left to the engine.
    assert rows == [[0, "", 0, 1, [1_000_000], []]]

    # The folds beyond the plain funnel, on another tenant: v views c1 at 3 s and c2 at 4 s,
    # and clicks c1 at 5 s.
    def event(event_id: str, kind: str, second: int, content: str) -> dict[str, object]:
        when = f"2026-03-01 00:00:0{second}.000000"
        return {
            **row,
            "tenant_id": "t2",
            "user_id": "v",
            "event_id": event_id,
            "type": kind,
            "content_id": content,
            "t": when,
        }

    server_store.insert_rows(
        "events",
        [event("f1", "view", 3, "c1"), event("f2", "view", 4, "c2"), event("f3", "click", 5, "c1")],
    )
    other = dataclasses.replace(plan, tenant_id="t2")
    # Held content: c1's chain (3 s → 5 s) reaches the click; c2's stops at its view.
    held = dataclasses.replace(other, hold=("content_id",))
    assert server_store.rows(held_counts_statement(held, {}, {})) == [[0, 1, [2_000_000], []]]
    # By the last step's content: the chain is the latest start's (4 s → 5 s); its click is
    # on c1, so v counts under c1 with that chain.
    last = dataclasses.replace(other, breakdown="content_id", attribution="last_step")
    rows = server_store.rows(last_step_counts_statement(last, {}, None))
    assert sorted(rows) == [[0, "", 0, 1, [1_000_000], []], [1, "c1", 0, 1, [1_000_000], []]]
