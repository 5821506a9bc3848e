"""Late data: events that arrive after the orders they explain.

The events ingest calls ``reattribute_after_events`` in the same transaction, before it answers,
so every later read reflects the new touches (read-your-writes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class StoredTouch:
    """The parts of a newly stored event that can change an order's attribution."""

    event_id: str
    type: str
    occurred_at: dt.datetime
    user_id: str
    click_id: str | None


async def reattribute_after_events(
    session: AsyncSession, tenant_id: str, touches: Sequence[StoredTouch]
) -> int:
    """Re-attribute every paid order these new touches can affect; returns how many.

    Filled in by the orders domain (it owns attribution storage).
    """
    return 0
