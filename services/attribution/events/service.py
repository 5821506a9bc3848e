"""Event ingest: validate a decoded batch, store its new events once, count the outcome.

Each event is validated on its own (``validation``); the valid ones are stored in one
statement (``repository``), ``(tenant_id, event_id)`` being the idempotency key, so an event
already stored or repeated in the batch is a duplicate; every refused event is kept in
``rejected_events`` with its reasons. All of it runs inside the caller's transaction and leaves
the commit to it; ``record_metrics`` is called once the commit went through.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.core.metrics import EVENTS_RECEIVED
from services.attribution.credit import reattribution
from services.attribution.credit.reattribution import StoredTouch
from services.attribution.events import repository
from services.attribution.events.rollup import daily_rollup
from services.attribution.events.schemas import IngestResult, RejectedItem
from services.attribution.events.validation import (
    BatchPartition,
    ClickContext,
    EventRow,
    Rejection,
    clicks_to_resolve,
    partition_batch,
)
from shared.vocabulary import TOUCH_TYPES


@dataclass(slots=True)
class IngestOutcome:
    received: int
    accepted_types: list[str] = field(default_factory=list)
    duplicate_types: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.accepted_types)

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_types)

    def result(self) -> IngestResult:
        """The answer body."""
        return IngestResult(
            received=self.received,
            accepted=self.accepted,
            duplicates=self.duplicates,
            rejected=[
                RejectedItem(index=r.index, event_id=r.event_id, errors=r.errors)
                for r in self.rejected
            ],
        )


async def ingest(
    session: AsyncSession,
    tenant_id: str,
    raw_events: Sequence[Any],
    *,
    now: dt.datetime,
    max_future_seconds: int,
) -> IngestOutcome:
    """Validate and store one decoded batch in the session's transaction (no commit)."""
    batch = await validate_batch(
        session, tenant_id, raw_events, now=now, max_future_seconds=max_future_seconds
    )
    return await store_batch(session, tenant_id, batch, now=now)


async def validate_batch(
    session: AsyncSession,
    tenant_id: str,
    raw_events: Sequence[Any],
    *,
    now: dt.datetime,
    max_future_seconds: int,
) -> BatchPartition:
    """Validate one decoded batch; reads the stored clicks its events may inherit from."""
    stored_clicks = await repository.load_clicks(session, tenant_id, clicks_to_resolve(raw_events))
    return partition_batch(
        raw_events, now=now, max_future_seconds=max_future_seconds, stored_clicks=stored_clicks
    )


async def store_batch(
    session: AsyncSession, tenant_id: str, batch: BatchPartition, *, now: dt.datetime
) -> IngestOutcome:
    """Store a validated batch (its new events and its rejections) in the session's transaction."""
    stored = await store_events(session, tenant_id, batch.rows, received_at=now)
    await repository.store_rejections(session, tenant_id, batch.rejected, received_at=now)
    if batch.links:
        new_ids = {row.event_id for row in stored}
        links = [link for link in batch.links if link.event_id in new_ids]
        await repository.insert_interactions(session, tenant_id, links)
    outcome = IngestOutcome(received=batch.received, rejected=batch.rejected)
    outcome.accepted_types = [row.type for row in stored]
    if len(stored) == len(batch.rows):
        outcome.duplicate_types = batch.repeated_types
    else:
        new_ids = {row.event_id for row in stored}
        outcome.duplicate_types = [
            row.type for row in batch.rows if row.event_id not in new_ids
        ] + batch.repeated_types
    return outcome


async def store_events(
    session: AsyncSession,
    tenant_id: str,
    rows: Sequence[EventRow],
    *,
    received_at: dt.datetime,
) -> list[EventRow]:
    """Insert valid rows (unique event_ids) in one statement; returns those that were new.

    The newly stored touches are then handed to the late-data hook (re-attribution of the
    orders they may now earn credit for), and the new rows added to ``event_daily``, in the
    same transaction.
    """
    if not rows:
        return []
    new_ids = await repository.insert_events(session, tenant_id, rows, received_at=received_at)
    stored = [row for row in rows if row.event_id in new_ids]
    touches = [
        StoredTouch(row.event_id, row.type, row.occurred_at, row.user_id, row.click_id)
        for row in stored
        if row.type in TOUCH_TYPES
    ]
    if touches:
        # Through the module attribute: tests replace the hook there.
        await reattribution.reattribute_after_events(session, tenant_id, touches)
    # Last in the transaction: the upserted daily rows stay locked until the commit.
    await repository.add_to_daily(session, tenant_id, daily_rollup(stored))
    return stored


@dataclass(slots=True)
class Prevalidated:
    """A batch checked without the database, for the ingest buffer."""

    outcome: IngestOutcome
    first_valid: list[Any]  # the valid events, first occurrence of each event_id
    invalid: list[Any]  # the refused ones, as received


def prevalidate(
    raw_events: Sequence[Any], *, now: dt.datetime, max_future_seconds: int
) -> Prevalidated:
    """Every rule but the stored clicks: an event inheriting from a click id is let through
    here and judged by the writer, which knows the tenant's clicks."""
    assumed = {
        click_id: ClickContext(_INHERITED, _INHERITED, None)
        for click_id in clicks_to_resolve(raw_events)
    }
    batch = partition_batch(
        raw_events, now=now, max_future_seconds=max_future_seconds, stored_clicks=assumed
    )
    refused = {rejection.index for rejection in batch.rejected}
    seen: set[str] = set()
    first_valid: list[Any] = []
    for index, raw in enumerate(raw_events):
        if index in refused or raw["event_id"] in seen:
            continue
        seen.add(raw["event_id"])
        first_valid.append(raw)
    outcome = IngestOutcome(received=batch.received, rejected=batch.rejected)
    outcome.accepted_types = [row.type for row in batch.rows]
    outcome.duplicate_types = batch.repeated_types
    return Prevalidated(outcome, first_valid, [r.payload for r in batch.rejected])


_INHERITED = "inherited-from-click"


def record_metrics(outcome: IngestOutcome) -> None:
    """Count outcomes in ``clipfunnel_events_received_total`` (after the commit)."""
    counts: Counter[tuple[str, str]] = Counter()
    for event_type in outcome.accepted_types:
        counts[event_type, "accepted"] += 1
    for event_type in outcome.duplicate_types:
        counts[event_type, "duplicate"] += 1
    for rejection in outcome.rejected:
        counts[rejection.type_label, "rejected"] += 1
    for (event_type, result), count in counts.items():
        EVENTS_RECEIVED.labels(event_type, result).inc(count)
