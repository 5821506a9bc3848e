"""The attribution service: events, orders, attribution, funnels and reports."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
from fastapi import APIRouter, FastAPI

from services.attribution.analytics.wiring import (
    analytic_funnel_source,
    analytic_path_source,
    analytic_viewer_source,
    replicate_forever,
    start_replication,
    stop_replication,
)
from services.attribution.catalog_sync.router import router as sync_router
from services.attribution.catalog_sync.service import CatalogSync
from services.attribution.config import AttributionSettings
from services.attribution.dashboard.router import router as dashboard_router
from services.attribution.datadriven.router import router as datadriven_router
from services.attribution.events.group_commit import GroupCommitIngest
from services.attribution.events.router import router as events_router
from services.attribution.experiments.router import router as experiments_router
from services.attribution.fraud.router import router as fraud_router
from services.attribution.funnels.router import router as funnels_router
from services.attribution.ingest_buffer.router import as_of_middleware
from services.attribution.ingest_buffer.router import router as ingest_router
from services.attribution.ingest_buffer.wiring import start_buffer, stop_buffer
from services.attribution.integrations.router import router as integrations_router
from services.attribution.models import RevokedToken
from services.attribution.orders.router import router as orders_router
from services.attribution.redirect.router import router as redirect_router
from services.attribution.reports.operations.router import router as operations_router
from services.attribution.reports.pages.router import router as pages_router
from services.attribution.reports.router import router as reports_router
from services.attribution.settings.router import router as settings_router
from shared.app import build_app
from shared.migrate import MigrationSpec

MIGRATIONS = MigrationSpec(
    service="attribution",
    script_location=Path(__file__).parent / "migrations",
    version_table="alembic_version_attribution",
)


def domain_routers() -> list[APIRouter]:
    """Every domain's router, imported plainly: a broken import fails loudly."""
    return [
        settings_router,
        sync_router,
        events_router,
        orders_router,
        integrations_router,
        redirect_router,
        funnels_router,
        reports_router,
        operations_router,
        pages_router,
        datadriven_router,
        fraud_router,
        experiments_router,
        dashboard_router,
        ingest_router,
    ]


def create_app(
    settings: AttributionSettings | None = None,
    *,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    """Build the app; ``catalog_transport`` lets tests route catalog calls in-process."""
    settings = settings or AttributionSettings()

    async def start(app: FastAPI) -> None:
        client = httpx.AsyncClient(
            base_url=settings.catalog_url, transport=catalog_transport, timeout=10.0
        )
        sync = CatalogSync(
            sessionmaker=app.state.sessionmaker,
            client=client,
            secret=settings.secret,
            interval_seconds=settings.sync_interval_seconds,
            max_backoff_seconds=settings.sync_max_backoff_seconds,
        )
        app.state.catalog_client = client
        app.state.catalog_sync = sync
        app.state.events_group_commit = (
            GroupCommitIngest(app.state.sessionmaker, app.state.read_sessionmaker)
            if app.state.engine.dialect.name == "sqlite"
            else None
        )
        app.state.sync_task = (
            asyncio.create_task(sync.run_forever(), name="catalog-sync")
            if settings.sync_enabled
            else None
        )
        app.state.analytics = None
        app.state.analytics_task = None
        if settings.analytics == "clickhouse":
            replicator = await start_replication(settings, app.state.sessionmaker)
            app.state.analytics = replicator
            app.state.analytics_task = asyncio.create_task(
                replicate_forever(replicator), name="analytics-replication"
            )
        await start_buffer(app, settings)
        # /readyz: 503 while the background sync has stopped advancing.
        app.state.readiness_checks = [sync.stall] if settings.sync_enabled else []

    async def stop(app: FastAPI) -> None:
        task: asyncio.Task[None] | None = app.state.sync_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await stop_buffer(app)
        await stop_replication(app.state.analytics_task)
        await app.state.catalog_client.aclose()
        if app.state.events_group_commit is not None:
            await app.state.events_group_commit.close()

    app = build_app(
        title="ClipFunnel attribution",
        description="Ingests viewer events and shop orders, attributes every order to the "
        "videos, live rooms and ads that led to it, and answers funnels and reports.",
        settings=settings,
        migrations=MIGRATIONS,
        revoked_tokens=RevokedToken,
        routers=domain_routers(),
        on_startup=start,
        on_shutdown=stop,
        configure_logs=configure_logs,
    )
    app.state.funnel_sources = analytic_funnel_source
    app.state.path_sources = analytic_path_source
    app.state.viewer_sources = analytic_viewer_source
    if settings.ingest_buffer:  # only then is there a watermark to add
        app.middleware("http")(as_of_middleware(app.state))
    return app
