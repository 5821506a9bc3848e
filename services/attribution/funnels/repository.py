"""The funnel's database reads: runs :mod:`.queries`' statements, streams the per-user rows.

The only module of the funnels that talks to the database. Rows come back as plain tuples
(no ORM objects), through a server-side cursor in chunks, never a whole history at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import TypeVar, cast

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.funnels import queries
from services.attribution.funnels.planner import FunnelPlan, ReadPlan
from services.attribution.funnels.queries import (
    OrderRowColumns,
    StreamRowColumns,
    UserRowColumns,
)

Row = TypeVar("Row", bound=tuple[object, ...])


class FunnelRepository:
    """One request's reads, on its session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def prepare(self, read: ReadPlan) -> None:
        """Settings of the read's transaction (PostgreSQL: memory for the aggregate)."""
        if read.work_mem is not None:
            await self.session.execute(
                text("SELECT set_config('work_mem', :size, true)"), {"size": read.work_mem}
            )

    async def order_rows(self, plan: FunnelPlan, read: ReadPlan) -> Sequence[OrderRowColumns]:
        rows = await self.session.execute(queries.funnel_orders_statement(plan, read))
        return rows.tuples().all()

    async def content_values(self, plan: FunnelPlan) -> dict[str, str]:
        """Content id → its value of the breakdown's read-model dimension."""
        rows = await self.session.execute(queries.content_values_statement(plan))
        return dict(rows.tuples().all())

    async def order_breakdown_values(self, plan: FunnelPlan) -> dict[str, frozenset[str]]:
        """Order id → the breakdown values of its last-touch credits (orders paid in range)."""
        if plan.breakdown is None:
            return {}
        rows = await self.session.execute(queries.order_breakdown_statement(plan, plan.breakdown))
        values: dict[str, set[str]] = {}
        for order_id, value in rows.tuples():
            values.setdefault(order_id, set()).add(value)
        return {order_id: frozenset(found) for order_id, found in values.items()}

    async def order_values(self, plan: FunnelPlan, key: str) -> dict[str, frozenset[str]]:
        """Order id → its values of ``key`` (lines' products, last-touch credits' others), for
        every order paid within the range and its window."""
        rows = await self.session.execute(queries.order_values_statement(plan, key))
        values: dict[str, set[str]] = {}
        for order_id, value in rows.tuples():
            values.setdefault(order_id, set()).add(value)
        return {order_id: frozenset(found) for order_id, found in values.items()}

    def user_rows(
        self, plan: FunnelPlan, read: ReadPlan
    ) -> AsyncGenerator[Sequence[UserRowColumns], None]:
        """Every user who can start a chain (one row each), in chunks of ``read.chunk_size``."""
        statement = queries.funnel_users_statement(plan, read)
        return self._chunks(statement, read.chunk_size, read_ahead=read.read_ahead)

    def stream_rows(
        self, plan: FunnelPlan, read: ReadPlan
    ) -> AsyncGenerator[Sequence[StreamRowColumns], None]:
        """Every item of the users' streams (see ``queries.stream_rows_statement``), by user."""
        statement = queries.stream_rows_statement(plan, read)
        return self._chunks(statement, read.chunk_size, read_ahead=read.read_ahead)

    async def _chunks(
        self, statement: Select[Row], chunk_size: int, *, read_ahead: bool
    ) -> AsyncGenerator[Sequence[Row], None]:
        result = await self.session.stream(statement, execution_options={"yield_per": chunk_size})
        # Rows are tuples: each chunk is a sequence of the statement's row type.
        partitions = cast(AsyncIterator[Sequence[Row]], result.partitions(chunk_size))
        if not read_ahead:
            async for part in partitions:
                yield part
            return

        async def next_chunk() -> Sequence[Row]:
            try:
                return await anext(partitions)
            except StopAsyncIteration:
                return []

        async with aclosing(_read_ahead(next_chunk)) as chunks:
            async for rows in chunks:
                yield rows


async def _read_ahead(
    fetch: Callable[[], Awaitable[Sequence[Row]]],
) -> AsyncGenerator[Sequence[Row], None]:
    """Chunks from ``fetch()`` until an empty one, asking for the next before yielding.

    The database produces chunk k + 1 while the caller evaluates chunk k, instead of idling
    between requests. If the caller stops early (an error, a timeout), the fetch in flight
    is cancelled: the driver then cancels the statement.
    """
    pending = asyncio.ensure_future(fetch())
    try:
        while rows := await pending:
            pending = asyncio.ensure_future(fetch())
            await asyncio.sleep(0)  # let the request go out before the caller computes
            yield rows
    finally:
        if not pending.done():
            pending.cancel()
            await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # retrieved: an error after the end is not reported twice
