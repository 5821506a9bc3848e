"""``GET /v1/ingest/lag``: how far the database is behind what the buffer accepted, and the
``As-Of`` watermark that funnel and report answers carry in buffer mode."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

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
    broker: Broker | None = getattr(request.app.state, "ingest_buffer", None)
    return _answer(await broker.lag() if broker is not None else None, utcnow())


def as_of_middleware(
    broker_of: Callable[[], Broker | None],
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Adds ``As-Of`` (taken before the answer is computed) to reads of committed data."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        broker = broker_of()
        if broker is None or not request.url.path.startswith(WATERMARKED_PREFIXES):
            return await call_next(request)
        try:
            watermark: dt.datetime | None = _answer(await broker.lag(), utcnow()).as_of
        except Exception:  # the broker is unreachable: answer without a watermark
            log.warning("ingest buffer: no watermark (broker unreachable)", exc_info=True)
            watermark = None
        response = await call_next(request)
        if watermark is not None:
            response.headers[AS_OF_HEADER] = watermark.isoformat().replace("+00:00", "Z")
        return response

    return middleware
