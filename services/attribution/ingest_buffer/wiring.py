"""The ingest buffer in the service (broker connection, writer task) and as its own worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from fastapi import FastAPI

from services.attribution.config import AttributionSettings
from services.attribution.ingest_buffer.broker import Broker
from services.attribution.ingest_buffer.writer import Writer
from shared.db import make_engine, make_sessionmaker

log = logging.getLogger("clipfunnel.ingest_buffer")


async def start_buffer(app: FastAPI, settings: AttributionSettings) -> None:
    """Connect to the broker (and start the writer) when the buffer is configured."""
    app.state.ingest_buffer = None
    app.state.ingest_writer_task = None
    if not settings.ingest_buffer:
        return
    broker = await Broker.connect(settings.ingest_buffer, settings.ingest_stream)
    app.state.ingest_buffer = broker
    if settings.ingest_writer:
        writer = Writer(
            broker,
            app.state.sessionmaker,
            secret=settings.secret,
            max_future_seconds=settings.max_future_seconds,
        )
        app.state.ingest_writer_task = asyncio.create_task(
            writer.run_forever(), name="ingest-buffer-writer"
        )


async def stop_buffer(app: FastAPI) -> None:
    task: asyncio.Task[None] | None = getattr(app.state, "ingest_writer_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    broker: Broker | None = getattr(app.state, "ingest_buffer", None)
    if broker is not None:
        await broker.close()


async def run_worker(settings: AttributionSettings) -> None:
    """``clipfunnel serve ingest-worker``: only the writer, until SIGTERM or SIGINT."""
    if not settings.ingest_buffer:
        raise SystemExit("set ATTRIBUTION_INGEST_BUFFER (nats://host:4222) to run the writer")
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
    broker = await Broker.connect(settings.ingest_buffer, settings.ingest_stream)
    writer = Writer(
        broker,
        make_sessionmaker(engine),
        secret=settings.secret,
        max_future_seconds=settings.max_future_seconds,
    )
    task = asyncio.create_task(writer.run_forever(), name="ingest-buffer-writer")
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    log.info("ingest writer started on stream %s", settings.ingest_stream)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await broker.close()
    await engine.dispose()
