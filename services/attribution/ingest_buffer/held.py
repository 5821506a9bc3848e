"""Held status posts: buffered posts that await an earlier post of their order.

A post the writer meets before the post it follows (a ``cancelled`` whose ``paid`` a killed
writer still held) used to go back to the broker with a delayed redelivery. Now it is kept
in the system of record, and only then acknowledged: the database, not the broker's
redelivery timers, keeps it until the writer can write it. The lag counts held posts as
pending, since they are accepted and not yet visible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.models import HeldOrderPost
from shared.db import insert_unless_present


@dataclass(frozen=True, slots=True)
class Held:
    tenant_id: str
    order_id: str
    status: str
    body: bytes
    held_at: dt.datetime


async def hold(
    session: AsyncSession,
    tenant_id: str,
    order_id: str,
    status: str,
    body: bytes,
    *,
    accepted_at: dt.datetime,
    now: dt.datetime,
) -> None:
    """Keep a post (held again after a crash: its first record stays)."""
    await insert_unless_present(
        session,
        HeldOrderPost,
        ("tenant_id", "order_id", "status"),
        tenant_id=tenant_id,
        order_id=order_id,
        status=status,
        body=body.decode(),
        accepted_at=accepted_at,
        held_at=now,
    )


async def held_posts(session: AsyncSession, limit: int) -> list[Held]:
    """The oldest held posts of every tenant (the writer writes for all of them)."""
    rows = await session.execute(
        select(
            HeldOrderPost.tenant_id,
            HeldOrderPost.order_id,
            HeldOrderPost.status,
            HeldOrderPost.body,
            HeldOrderPost.held_at,
        )
        .order_by(HeldOrderPost.held_at)
        .limit(limit)
    )
    return [Held(t, o, s, body.encode(), at) for t, o, s, body, at in rows]


async def release(session: AsyncSession, held: Held) -> None:
    await session.execute(
        delete(HeldOrderPost).where(
            HeldOrderPost.tenant_id == held.tenant_id,
            HeldOrderPost.order_id == held.order_id,
            HeldOrderPost.status == held.status,
        )
    )


async def held_lag(session: AsyncSession) -> tuple[int, dt.datetime | None]:
    """How many posts are held, and when the oldest of them was accepted."""
    count, oldest = (
        await session.execute(select(func.count(), func.min(HeldOrderPost.accepted_at)))
    ).one()
    return int(count), oldest
