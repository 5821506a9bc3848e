"""The ingest buffer as the events and orders routers see it (the broker lives above them).

With ``ATTRIBUTION_INGEST_BUFFER`` set, ``app.state.ingest_buffer`` holds an object with
these methods: a route validates what it can without the database, hands the rest to the
buffer and answers 202 once the broker has stored it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from fastapi import Request

from shared.errors import ProblemError, ServiceUnavailable

log = logging.getLogger("clipfunnel.ingest_buffer")


class IngestBuffer(Protocol):
    async def publish_events(
        self, tenant_id: str, raw_events: Sequence[Any], *, deduplicate: bool = True
    ) -> list[bool]:
        """Store ``raw_events`` durably for the writer; returns, for each, whether the broker
        took it as new (``deduplicate``: by tenant and event id, for valid events only)."""
        ...

    async def publish_order(self, tenant_id: str, order_id: str, status: str, raw: bytes) -> bool:
        """Store one order status post durably; False when the broker already had it."""
        ...


def ingest_buffer(request: Request) -> IngestBuffer | None:
    found: IngestBuffer | None = getattr(request.app.state, "ingest_buffer", None)
    return found


@contextlib.asynccontextmanager
async def broker_errors() -> AsyncIterator[None]:
    """A broker that does not confirm in time is a 503 the client retries, never a loss."""
    try:
        yield
    except ProblemError:
        raise
    except Exception as exc:
        log.warning("ingest buffer: publish failed", exc_info=True)
        raise ServiceUnavailable(
            "The ingest buffer did not confirm the post; nothing was kept for sure. "
            "Retry with the same body (the ids make a retry safe).",
            headers={"Retry-After": "1"},
        ) from exc
