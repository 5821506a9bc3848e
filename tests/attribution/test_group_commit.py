"""Group commit: concurrent event batches share a transaction; a failing one fails alone."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.attribution.events import group_commit
from services.attribution.events.group_commit import GroupCommitIngest
from services.attribution.models import Event, EventDaily

AT = "2025-03-01T10:00:00Z"
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)  # the arrival time the batches are given


def batch(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{prefix}-{i}",
            "type": "impression",
            "occurred_at": AT,
            "user_id": f"u-{i}",
            "content_id": "c-1",
        }
        for i in range(n)
    ]


def makers(app: FastAPI) -> tuple[Any, Any]:
    return app.state.sessionmaker, app.state.read_sessionmaker


async def stored(app: FastAPI, tenant: str) -> tuple[int, int]:
    async with app.state.read_sessionmaker() as session:
        events = await session.scalar(
            select(func.count()).select_from(Event).where(Event.tenant_id == tenant)
        )
        daily = await session.scalar(
            select(func.coalesce(func.sum(EventDaily.events), 0)).where(
                EventDaily.tenant_id == tenant
            )
        )
    return int(events or 0), int(daily or 0)


async def test_batches_arriving_together_commit_in_one_transaction(
    attribution_app: FastAPI, tenant: str
) -> None:
    writer = GroupCommitIngest(*makers(attribution_app))
    outcomes = await asyncio.gather(
        *(
            writer.ingest(
                tenant, batch(f"b{k}", 50) + batch("shared", 5), now=NOW, max_future_seconds=300
            )
            for k in range(6)
        )
    )
    assert writer.groups == 1
    # Each batch's own events are new; the five shared ones are new for the first only.
    assert [o.accepted for o in outcomes] == [55, 50, 50, 50, 50, 50]
    assert [o.duplicates for o in outcomes] == [0, 5, 5, 5, 5, 5]
    assert await stored(attribution_app, tenant) == (305, 305)


async def test_a_group_never_grows_past_its_event_limit(
    attribution_app: FastAPI, tenant: str
) -> None:
    writer = GroupCommitIngest(*makers(attribution_app), max_group_events=100)
    await asyncio.gather(
        *(
            writer.ingest(tenant, batch(f"b{k}", 40), now=NOW, max_future_seconds=300)
            for k in range(5)
        )
    )
    assert writer.groups == 3  # 40 + 40, 40 + 40, 40
    assert await stored(attribution_app, tenant) == (200, 200)


async def test_a_failing_batch_is_rolled_back_alone(
    attribution_app: FastAPI, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_store = group_commit.store_batch

    async def store_batch(session: Any, tenant_id: str, batch: Any, **kwargs: Any) -> Any:
        outcome = await real_store(session, tenant_id, batch, **kwargs)
        if batch.rows[0].event_id.startswith("bad"):
            raise RuntimeError("the database refused this batch")  # after its rows went in
        return outcome

    monkeypatch.setattr(group_commit, "store_batch", store_batch)
    writer = GroupCommitIngest(*makers(attribution_app))
    results = await asyncio.gather(
        writer.ingest(tenant, batch("ok1", 10), now=NOW, max_future_seconds=300),
        writer.ingest(tenant, batch("bad", 10), now=NOW, max_future_seconds=300),
        writer.ingest(tenant, batch("ok2", 10), now=NOW, max_future_seconds=300),
        return_exceptions=True,
    )
    assert writer.groups == 1
    assert [type(r).__name__ for r in results] == ["IngestOutcome", "RuntimeError", "IngestOutcome"]
    assert await stored(attribution_app, tenant) == (20, 20)  # nothing of the failed batch


async def test_a_request_that_went_away_before_its_turn_is_dropped(
    attribution_app: FastAPI, tenant: str
) -> None:
    writer = GroupCommitIngest(*makers(attribution_app))
    first = asyncio.ensure_future(
        writer.ingest(tenant, batch("a", 10), now=NOW, max_future_seconds=300)
    )
    gone = asyncio.ensure_future(
        writer.ingest(tenant, batch("b", 10), now=NOW, max_future_seconds=300)
    )
    await asyncio.sleep(0)  # both queued; the writer has not run yet
    gone.cancel()
    assert (await first).accepted == 10
    with pytest.raises(asyncio.CancelledError):
        await gone
    await writer.close()
    assert await stored(attribution_app, tenant) == (10, 10)


async def test_the_service_on_sqlite_uses_it(attribution_app: FastAPI) -> None:
    sqlite = attribution_app.state.engine.dialect.name == "sqlite"
    assert isinstance(attribution_app.state.events_group_commit, GroupCommitIngest) is sqlite
