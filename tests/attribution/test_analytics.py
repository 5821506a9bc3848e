"""The analytic store: its versioned schema, replication of events, and reads from it.

Run on chdb (the embedded ClickHouse), with SQLite and PostgreSQL as the system of record.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from services.attribution.analytics import store
from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.wiring import start_replication, stop_replication
from services.attribution.models import Event
from services.cli import app as cli
from tests.attribution.factories import batch, event, iso
from tests.conftest import _ANALYTICS_DIR, TokenFactory, auth

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def replicator(app: FastAPI) -> EventReplicator:
    found: EventReplicator = app.state.analytics
    return found


def analytic_events(app: FastAPI, tenant: str) -> list[list[object]]:
    """``(event_id, rows without FINAL)`` per event of the tenant in ClickHouse."""
    return replicator(app).store.rows(
        f"SELECT event_id, count() FROM {{db}}.events FINAL WHERE tenant_id = {store.quote(tenant)}"
        " GROUP BY event_id ORDER BY event_id"
    )


async def system_of_record_ids(app: FastAPI, tenant: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(Event.event_id).where(Event.tenant_id == tenant).order_by(Event.event_id)
        )
        return list(rows.scalars())


def test_the_schema_is_versioned_and_applied_once() -> None:
    analytic = store.embedded(_ANALYTICS_DIR, f"test_{uuid.uuid4().hex[:16]}")
    assert analytic.migrate() == [version for version, _ in store.SCHEMA]
    assert analytic.migrate() == []
    assert analytic.version() == store.SCHEMA[-1][0]
    key = analytic.rows(
        "SELECT sorting_key FROM system.tables WHERE database = "
        f"{store.quote(analytic.database)} AND name = 'events'"
    )
    assert key == [["tenant_id, user_id, t, event_id"]]


def test_another_data_directory_is_refused_in_the_same_process() -> None:
    with pytest.raises(RuntimeError, match="one embedded store per process"):
        store.embedded(_ANALYTICS_DIR / "elsewhere", "other")


def test_literals_are_quoted() -> None:
    assert store.quote("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert store.quote(None) == "NULL"
    assert store.quote_list([]) == "(NULL)"


async def test_accepted_events_reach_the_store_once_even_when_copied_twice(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    token = make_token(tenant, "events:write")
    events = [
        event(event_id=f"e-{i}", user_id=f"u-{i % 3}", occurred_at=iso(T0)) for i in range(10)
    ]
    for body in (batch(*events), batch(*events[:5], events[0])):  # repeats are duplicates
        response = await attribution.post("/v1/events", json=body, headers=auth(token))
        assert response.status_code in (200, 201, 207), response.text
    await replicator(attribution_app).catch_up()
    ids = await system_of_record_ids(attribution_app, tenant)
    assert [row[0] for row in analytic_events(attribution_app, tenant)] == ids
    # A crash after the copy but before the stamp: the events are copied again.
    async with attribution_app.state.sessionmaker() as session:
        await session.execute(
            update(Event).where(Event.tenant_id == tenant).values(analytics_seq=None)
        )
        await session.commit()
    assert await replicator(attribution_app).catch_up() == len(ids)
    assert analytic_events(attribution_app, tenant) == [[i, 1] for i in ids]
    async with attribution_app.state.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count()).select_from(Event).where(Event.analytics_seq.is_(None))
        )
    assert pending == 0


async def test_a_funnel_reflects_events_as_soon_as_they_are_answered(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    write = make_token(tenant, "events:write")
    read = make_token(tenant, "reports:read")
    query = {
        "steps": [{"type": "view"}, {"type": "click"}],
        "from": iso(T0 - dt.timedelta(days=1)),
        "to": iso(T0 + dt.timedelta(days=1)),
    }
    seen = []
    for i in range(3):
        body = batch(
            event(user_id=f"u-{i}", occurred_at=iso(T0)),
            event(type="click", user_id=f"u-{i}", occurred_at=iso(T0 + dt.timedelta(seconds=1))),
        )
        response = await attribution.post("/v1/events", json=body, headers=auth(write))
        assert response.status_code in (200, 201, 207), response.text
        answer = await attribution.post("/v1/funnels", json=query, headers=auth(read))
        assert answer.status_code == 200, answer.text
        seen.append([step["users"] for step in answer.json()["steps"]])
    assert seen == [[1, 1], [2, 2], [3, 3]]


async def test_startup_copies_what_the_store_missed(attribution_app: FastAPI, tenant: str) -> None:
    """Events committed but never copied (the process died first) are copied at startup."""
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    async with attribution_app.state.sessionmaker() as session:
        session.add_all(
            Event(
                tenant_id=tenant,
                event_id=f"lost-{i}",
                type="view",
                occurred_at=T0,
                user_id="u-lost",
                content_id="c-1",
            )
            for i in range(4)
        )
        await session.commit()
    settings = attribution_app.state.settings
    restarted = await start_replication(settings, attribution_app.state.sessionmaker)
    assert restarted.store.database == replicator(attribution_app).store.database
    assert [row[0] for row in analytic_events(attribution_app, tenant)] == [
        f"lost-{i}" for i in range(4)
    ]


def test_several_workers_need_a_clickhouse_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTRIBUTION_CLICKHOUSE_URL", raising=False)
    monkeypatch.delenv("ATTRIBUTION_ANALYTICS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "attribution", "--workers", "2"])
    assert result.exit_code == 2
    assert "ATTRIBUTION_CLICKHOUSE_URL" in result.output
