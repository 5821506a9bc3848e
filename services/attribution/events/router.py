"""``POST /v1/events`` and ``GET /v1/events/rejected``: thin HTTP over ``service.py``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from services.attribution.core.buffer import IngestBuffer, broker_errors, ingest_buffer
from services.attribution.events import repository, service
from services.attribution.events.group_commit import GroupCommitIngest
from services.attribution.events.parsing import parse_batch
from services.attribution.events.schemas import (
    IngestProblem,
    IngestResult,
    RejectedEventOut,
    batch_request_schema,
)
from shared.app import SessionDep
from shared.auth import EventsWriter
from shared.db import utcnow
from shared.errors import PROBLEM_JSON, UnprocessableEntity
from shared.pagination import Page, PageDep, decode_cursor, encode_cursor

log = logging.getLogger("clipfunnel.events")

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "",
    response_model=IngestResult,
    summary="Ingest a batch of viewer events (1–1,000 events, at most 1 MiB)",
    description=(
        "Each event is validated on its own: the valid ones are stored, the invalid ones are "
        "answered in `rejected` with their index and reasons and kept in the rejected-events "
        "store (`GET /v1/events/rejected`). `event_id` is the idempotency key per tenant: an "
        "event already stored, or repeated in the batch, counts as a duplicate and is a "
        "success. Everything is committed before the answer, and attribution reflects the new "
        "events from then on. With the ingest buffer on, the answer is 202 once the broker "
        "holds the events (`accepted` counts those new to it); they are visible after "
        "`GET /v1/ingest/lag` shows the writer caught up."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": batch_request_schema()}},
        }
    },
    responses={
        202: {"model": IngestResult, "description": "Buffer mode: the broker holds the events"},
        400: {"description": "The body is not valid JSON (problem+json)"},
        413: {"description": "More than 1,000 events or more than 1 MiB (problem+json)"},
        422: {
            "model": IngestProblem,
            "description": 'The body is not `{"events": [...]}` with at least one event, or '
            "every event was rejected: problem+json with the same fields as a 200 answer "
            "plus `errors`",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/IngestProblem"}}},
        },
    },
)
async def post_events(
    request: Request, response: Response, principal: EventsWriter, session: SessionDep
) -> IngestResult:
    settings = request.app.state.settings
    body = await request.body()  # size-limited (413) by the body limit middleware
    raw_events = parse_batch(body, max_events=settings.max_batch_events)
    buffer = ingest_buffer(request)
    if buffer is not None:
        response.status_code = 202
        return await _buffered(
            buffer, principal.tenant_id, raw_events, max_future_seconds=settings.max_future_seconds
        )
    group_commit: GroupCommitIngest | None = request.app.state.events_group_commit
    if group_commit is not None:  # SQLite: share a transaction with concurrent batches
        outcome = await group_commit.ingest(
            principal.tenant_id,
            raw_events,
            now=utcnow(),
            max_future_seconds=settings.max_future_seconds,
        )
    else:
        outcome = await service.ingest(
            session,
            principal.tenant_id,
            raw_events,
            now=utcnow(),
            max_future_seconds=settings.max_future_seconds,
        )
        await session.commit()
    service.record_metrics(outcome)
    log.debug(
        "events batch: tenant=%s received=%d accepted=%d duplicates=%d rejected=%d",
        principal.tenant_id,
        outcome.received,
        outcome.accepted,
        outcome.duplicates,
        len(outcome.rejected),
    )
    return _answer(outcome)


async def _buffered(
    buffer: IngestBuffer, tenant_id: str, raw_events: list[Any], *, max_future_seconds: int
) -> IngestResult:
    """Buffer mode: checked without the database, handed to the broker, answered 202."""
    checked = service.prevalidate(raw_events, now=utcnow(), max_future_seconds=max_future_seconds)
    outcome = checked.outcome
    async with broker_errors():
        if checked.invalid:  # kept by the writer in the rejected-events store
            await buffer.publish_events(tenant_id, checked.invalid, deduplicate=False)
        new = await buffer.publish_events(tenant_id, checked.first_valid)
    outcome.duplicate_types += [
        raw["type"] for raw, fresh in zip(checked.first_valid, new, strict=True) if not fresh
    ]
    outcome.accepted_types = [
        raw["type"] for raw, fresh in zip(checked.first_valid, new, strict=True) if fresh
    ]
    return _answer(outcome)


def _answer(outcome: service.IngestOutcome) -> IngestResult:
    result = outcome.result()
    if outcome.accepted == 0 and outcome.duplicates == 0:
        raise UnprocessableEntity(
            f"All {outcome.received} event(s) were rejected; see `rejected` for each one's "
            "reasons. They are kept in the rejected-events store.",
            errors=[
                {"loc": ["body", "events", item.index], "msg": error}
                for item in outcome.rejected
                for error in item.errors
            ],
            extra=result.model_dump(),
        )
    return result


@router.get(
    "/rejected",
    response_model=Page[RejectedEventOut],
    summary="List the events refused at ingest, in arrival order (oldest first)",
    description="Each item is the event exactly as received, with its position in its batch "
    "and the reasons it was refused. Pages run oldest first, so following `next_cursor` never "
    "skips events that arrive meanwhile: they appear on later pages.",
    responses={422: {"description": "Invalid `limit` or `cursor`"}},
)
async def get_rejected(
    principal: EventsWriter,
    session: SessionDep,
    page: PageDep,
) -> Page[RejectedEventOut]:
    after: str | None = None
    if page.cursor is not None:
        decoded = decode_cursor(page.cursor)
        if not isinstance(decoded, str):
            raise UnprocessableEntity(
                "The cursor is not valid; pass back the `next_cursor` of a previous page.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
            )
        after = decoded
    records, last = await repository.list_rejected(
        session, principal.tenant_id, limit=page.limit, after=after
    )
    return Page[RejectedEventOut](
        items=[RejectedEventOut.model_validate(record, from_attributes=True) for record in records],
        next_cursor=encode_cursor(last) if last is not None else None,
    )
