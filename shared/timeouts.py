"""A time bound for expensive queries (reports, funnels): 503 problem+json instead of a hang.

Use in a router, around the service call that does the work::

    return await bounded(
        service.run_funnel(session, principal.tenant_id, query, ...),
        request.app.state.settings.report_timeout_seconds,
        session=session,
    )

or, for a report or funnel, ``report_bounded(settings, work, session)``, which takes the bound
from the service's ``report_timeout_seconds`` setting.

With ``session`` given, the bound is enforced on the database too, so a timed-out query does
not keep running after its client is gone:

- PostgreSQL: ``statement_timeout`` is set for the transaction (a little above the bound, as
  a backstop for when the client-side cancel cannot reach the server); on timeout the
  driver's cancel request stops the running statement.
- SQLite: the connection is interrupted at the deadline (``sqlite3.Connection.interrupt``),
  which stops the statement running in aiosqlite's worker thread (without it, the rollback
  that follows a cancelled statement would wait for the statement to finish).

Then the session is made safe for the rest of the request and the pool: rolled back on SQLite
(the interrupted connection is sound, and the rollback releases its write lock at once),
invalidated elsewhere (a connection's state after a cancelled statement is unknown, so the
pool replaces it).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import ServiceUnavailable

T = TypeVar("T")

# PostgreSQL's "query_canceled" (statement_timeout or a cancel request).
_QUERY_CANCELED = "57014"
# The server-side backstop fires this long after the client-side bound.
_SERVER_GRACE_SECONDS = 1.0
# On SQLite, cancellation follows the interrupt this long after the deadline (if still needed).
_INTERRUPT_GRACE_SECONDS = 0.1
_INTERRUPT_REPEAT_SECONDS = 0.05


class QueryTimeout(ServiceUnavailable):
    type_slug, title = "query-timeout", "Query took too long"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The query took too long (more than {seconds:g} s); narrow the range or add "
            "filters and try again.",
            headers={"Retry-After": str(max(1, math.ceil(seconds)))},
        )


async def bounded(
    work: Awaitable[T], seconds: float | None, *, session: AsyncSession | None = None
) -> T:
    """Await ``work`` for at most ``seconds`` (None or <= 0: no bound); raise
    :class:`QueryTimeout` (503, ``Retry-After``) when it takes longer."""
    if seconds is None or seconds <= 0:
        return await work
    driver: Any = None
    if session is not None:
        driver = await _prepare(session, seconds)
    loop = asyncio.get_running_loop()
    expired = False
    interrupts: list[asyncio.Task[Any]] = []

    def deadline() -> None:
        nonlocal expired
        expired = True
        if driver is not None:
            # SQLite: stop the statement first, so that it fails ("interrupted") on its own.
            # Cancelling it instead would make SQLAlchemy roll back — queued behind the
            # running statement — and close the connection before the interrupt came.
            interrupts.append(loop.create_task(_interrupt(driver)))

    timer = loop.call_later(seconds, deadline)
    try:
        async with asyncio.timeout(seconds + (_INTERRUPT_GRACE_SECONDS if driver else 0.0)):
            return await work
    except TimeoutError:
        await _abandon(session, interrupts)
        raise QueryTimeout(seconds) from None
    except DBAPIError as exc:
        if expired or _sqlstate(exc) == _QUERY_CANCELED:
            await _abandon(session, interrupts)
            raise QueryTimeout(seconds) from None
        raise
    finally:
        timer.cancel()
        for task in interrupts:
            # The work won the race with its deadline: an interrupt not yet issued must not
            # hit the request's next statement.
            task.cancel()


async def report_bounded(settings: object, work: Awaitable[T], session: AsyncSession) -> T:
    """``work`` bounded by the service's ``report_timeout_seconds`` setting (no bound when its
    settings have none), on the database too."""
    seconds: float | None = getattr(settings, "report_timeout_seconds", None)
    return await bounded(work, seconds, session=session)


async def _prepare(session: AsyncSession, seconds: float) -> Any:
    """Set the server-side backstop (PostgreSQL) and keep the SQLite driver connection, which
    is needed to interrupt it."""
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        millis = int((seconds + _SERVER_GRACE_SECONDS) * 1000)
        await connection.execute(
            text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": f"{millis}ms"}
        )
        return None
    if dialect == "sqlite":
        raw = await connection.get_raw_connection()
        return raw.driver_connection
    return None


async def _interrupt(driver: Any) -> None:
    # aiosqlite's interrupt() calls sqlite3's directly (thread-safe), not queued behind the
    # statement running in its worker thread. Repeated until the work has ended (the caller
    # cancels this task then): on a loaded machine the statement may start only after the
    # deadline, and an interrupt with no statement running is a no-op. Meanwhile a
    # cancelled session's rollback waits behind that statement, so stopping the interrupts
    # early would leave the request waiting for the statement to end on its own.
    while True:
        with contextlib.suppress(Exception):
            await driver.interrupt()
        await asyncio.sleep(_INTERRUPT_REPEAT_SECONDS)


async def _abandon(session: AsyncSession | None, interrupts: list[asyncio.Task[Any]]) -> None:
    if session is None:
        return
    if interrupts:
        # SQLite: roll back so the transaction's write lock (BEGIN IMMEDIATE) is released at
        # once. (Invalidating would leave aiosqlite's sqlite3 connection, and its lock, open
        # until garbage collection.) The interrupts go on meanwhile: a statement cancelled
        # while still queued in aiosqlite's thread runs anyway, with the rollback behind it.
        with contextlib.suppress(Exception):
            await session.rollback()
        for task in interrupts:
            task.cancel()
        await asyncio.gather(*interrupts, return_exceptions=True)
        return
    # Elsewhere the statement was cancelled mid-flight: the connection's state is unknown.
    with contextlib.suppress(Exception):
        await session.invalidate()


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    for attr in ("sqlstate", "pgcode"):
        value = getattr(orig, attr, None)
        if isinstance(value, str):
            return value
    # SQLAlchemy's asyncpg adapter keeps asyncpg's error as the cause.
    cause = getattr(orig, "__cause__", None)
    value = getattr(cause, "sqlstate", None)
    return value if isinstance(value, str) else None
