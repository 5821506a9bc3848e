"""The analytic store in the service: opened, migrated and caught up at startup."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.analytics import store
from services.attribution.analytics.funnels import ClickHouseFunnelSource
from services.attribution.analytics.paths import ClickHousePathSource
from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.viewers import ClickHouseViewers
from services.attribution.config import AttributionSettings
from services.attribution.datadriven.source import PathSource, SqlPathSource
from services.attribution.funnels.source import FunnelSource, SqlFunnelSource
from services.attribution.reports.viewers import SqlViewers, ViewerCounter

log = logging.getLogger(__name__)

#: How often events committed by other paths are copied in the background.
REPLICATION_INTERVAL_SECONDS = 0.5


def open_store(settings: AttributionSettings) -> store.AnalyticStore:
    if settings.clickhouse_url:
        return store.server(settings.clickhouse_url, settings.clickhouse_database)
    path = settings.analytics_path or settings.var_dir / "analytics"
    return store.embedded(path, settings.clickhouse_database)


async def start_replication(
    settings: AttributionSettings, sessionmaker: async_sessionmaker[AsyncSession]
) -> EventReplicator:
    """Open and migrate the store, and copy what it misses before the service serves."""
    analytic = open_store(settings)
    await asyncio.to_thread(analytic.migrate)
    replicator = EventReplicator(sessionmaker, analytic)
    copied = await replicator.catch_up()
    if copied:
        log.info("analytic store caught up", extra={"events": copied})
    return replicator


async def replicate_forever(replicator: EventReplicator) -> None:
    """Keep the store close behind the system of record (reads catch up anyway)."""
    while True:
        await asyncio.sleep(REPLICATION_INTERVAL_SECONDS)
        try:
            await replicator.catch_up()
        except Exception:  # logged and retried: a read catches up on its own anyway
            log.exception("analytic replication failed; retrying")


async def stop_replication(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def analytic_funnel_source(request: Request, session: AsyncSession) -> FunnelSource:
    """Funnels from the analytic store when the service runs one, else from the database."""
    replicator: EventReplicator | None = getattr(request.app.state, "analytics", None)
    if replicator is None:
        return SqlFunnelSource(session)
    return ClickHouseFunnelSource(session, replicator)


def analytic_path_source(request: Request, session: AsyncSession) -> PathSource:
    """Data-driven paths from the analytic store when the service runs one."""
    replicator: EventReplicator | None = getattr(request.app.state, "analytics", None)
    if replicator is None:
        return SqlPathSource(session)
    return ClickHousePathSource(session, replicator)


def analytic_viewer_source(request: Request, session: AsyncSession) -> ViewerCounter:
    """Distinct viewers of reports from the analytic store when the service runs one."""
    replicator: EventReplicator | None = getattr(request.app.state, "analytics", None)
    if replicator is None:
        return SqlViewers(session)
    return ClickHouseViewers(replicator)
