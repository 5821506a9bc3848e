"""``GET /v1/ingest/lag``: how far the database is behind what the buffer accepted, and the
``As-Of`` watermark that funnel and report answers carry in buffer mode."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.datastructures import State

from services.attribution.ingest_buffer import held
from services.attribution.ingest_buffer.broker import Broker, Lag
from shared.auth import Principal, require_scope
from shared.db import utcnow
from shared.schemas import Schema

log = logging.getLogger("clipfunnel.ingest_buffer")
router = APIRouter(prefix="/v1/ingest", tags=["ingest"])
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]

#: Answers that read what the writer commits: in buffer mode they carry ``As-Of``.
WATERMARKED_PREFIXES = ("/v1/funnels", "/v1/reports", "/v1/attribution", "/v1/experiments")
AS_OF_HEADER = "As-Of"


class IngestLag(Schema):
    mode: Literal["direct", "buffer"] = Field(
        description="`direct`: posts are committed before they are answered; `buffer`: "
        "accepted into NATS JetStream and committed by the writer"
    )
    pending: int = Field(description="Messages accepted but not yet committed (all tenants)")
    oldest_pending_at: dt.datetime | None = Field(
        description="When the oldest of them was accepted; null when caught up"
    )
    lag_seconds: float = Field(description="How long ago that was (0 when caught up)")
    as_of: dt.datetime = Field(
        description="Everything accepted before this instant is visible to funnels and reports"
    )


def _answer(lag: Lag | None, now: dt.datetime) -> IngestLag:
    if lag is None:
        return IngestLag(mode="direct", pending=0, oldest_pending_at=None, lag_seconds=0, as_of=now)
    oldest = lag.oldest
    return IngestLag(
        mode="buffer",
        pending=lag.pending,
        oldest_pending_at=oldest,
        lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        as_of=oldest or now,
    )


@router.get(
    "/lag",
    response_model=IngestLag,
    summary="How far the database is behind the ingest buffer (read-your-writes after it)",
    description="In buffer mode a 202 from `POST /v1/events` or `POST /v1/orders` means the "
    "broker holds the post; funnels and reports see it once `pending` reaches 0, or once "
    "`as_of` passes the time it was posted. Without the buffer, always caught up.",
)
async def get_lag(request: Request, principal: Reader) -> IngestLag:
    return _answer(await buffer_lag(request.app.state), utcnow())


async def buffer_lag(state: State) -> Lag | None:
    """What the broker holds and the writer has not committed, held posts included (None
    without the buffer)."""
    broker: Broker | None = getattr(state, "ingest_buffer", None)
    if broker is None:
        return None
    in_broker = await broker.lag()
    try:
        async with state.sessionmaker() as session:
            count, oldest = await held.held_lag(session)
    except Exception:  # the database is down: what the broker holds is still worth saying
        log.warning("ingest buffer: held posts unavailable for the lag", exc_info=True)
        return in_broker
    if not count:
        return in_broker
    return Lag(
        in_broker.pending + count,
        min(oldest, in_broker.oldest) if oldest and in_broker.oldest else oldest,
    )


def as_of_middleware(
    state: State,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Adds ``As-Of`` (taken before the answer is computed) to reads of committed data."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(WATERMARKED_PREFIXES):
            return await call_next(request)
        try:
            lag = await buffer_lag(state)
            watermark = None if lag is None else _answer(lag, utcnow()).as_of
        except Exception:  # the broker is unreachable: answer without a watermark
            log.warning("ingest buffer: no watermark (broker unreachable)", exc_info=True)
            watermark = None
        response = await call_next(request)
        if watermark is not None:
            response.headers[AS_OF_HEADER] = watermark.isoformat().replace("+00:00", "Z")
        return response

    return middleware
