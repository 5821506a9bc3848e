"""Revoked tokens: the queries over each service's ``revoked_tokens`` table, and the verifier
that checks every request's token against the list it caches.

A revoked token is remembered by its tenant and id (``jti``) alone. Each service declares the
table on its own declarative base with ``shared.db.RevokedTokenColumns``; the functions here
take that table, so both services share one set of queries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import Principal, decode_token
from shared.db import RevokedTokenColumns, insert_for, make_engine, utcnow
from shared.errors import RevocationListStale, Unauthorized
from shared.metrics import REVOCATION_RELOAD_FAILURES, REVOCATION_RELOADED

RevokedTable = type[RevokedTokenColumns]


async def revoked_token_ids(conn: AsyncConnection, table: RevokedTable) -> set[tuple[str, str]]:
    """Every revoked ``(tenant, token id)``. Deliberately not scoped to one tenant: each
    replica caches the whole (small) list and checks every request's token against it."""
    rows = await conn.execute(select(table.tenant_id, table.token_id))
    return {(tenant_id, token_id) for tenant_id, token_id in rows}


async def revoke(conn: AsyncConnection, table: RevokedTable, tenant_id: str, token_id: str) -> None:
    """Remember a token as revoked; revoking it again keeps the first ``revoked_at``."""
    statement = (
        insert_for(conn.dialect.name)(table)
        .values(tenant_id=tenant_id, token_id=token_id, revoked_at=utcnow())
        .on_conflict_do_nothing(index_elements=["tenant_id", "token_id"])
    )
    await conn.execute(statement)


async def revoke_token_id(
    database_url: str, table: RevokedTable, tenant_id: str, token_id: str
) -> None:
    """Revoke a token in the service database at ``database_url`` (the command line's path)."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await revoke(conn, table, tenant_id, token_id)
    finally:
        await engine.dispose()


RevokedLoader = Callable[[], Awaitable[set[tuple[str, str]]]]
Clock = Callable[[], float]

_log = structlog.get_logger("clipfunnel.auth")


@dataclass
class TokenVerifier:
    """Per-app verifier: checks each token against the revoked ``(tenant, token id)`` list.

    The list is re-read when older than ``refresh_seconds`` (one reload at a time; a failed one
    is retried at most every ``retry_seconds``). A failed reload is logged and counted, and
    the last list stays in use, but only up to ``max_staleness_seconds`` after the last
    successful reload: beyond that, or before any list was read at all, a revoked token could
    pass unnoticed, so every authenticated request is refused with 503 until a reload succeeds.
    """

    secret: str
    load_revoked: RevokedLoader
    refresh_seconds: float = 5.0
    max_staleness_seconds: float = 30.0
    retry_seconds: float = 1.0
    clock: Clock = time.monotonic
    _revoked: frozenset[tuple[str, str]] = frozenset()
    _loaded_at: float | None = None
    _failed_at: float | None = None
    _reload_due: bool = True
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def verify(self, token: str) -> Principal:
        principal = decode_token(self.secret, token)
        revoked = await self.revoked()
        if (principal.tenant_id, principal.token_id) in revoked:
            raise Unauthorized("The bearer token has been revoked; mint a new one.")
        return principal

    async def revoked(self) -> frozenset[tuple[str, str]]:
        """The revoked list, reloaded when due; raises RevocationListStale when too old."""
        if self._reload_wanted():
            if not self._lock.locked():
                if self._failed_at is None or self._age(self._failed_at) >= self.retry_seconds:
                    async with self._lock:
                        if self._reload_wanted():
                            await self._reload()
            elif self._reload_due or not self._usable():
                async with self._lock:  # another request is reloading: its outcome decides
                    pass
        if not self._usable():
            raise RevocationListStale(self._stale_detail(), headers={"Retry-After": "5"})
        return self._revoked

    def forget_cache(self) -> None:
        """Reload the list on the next request (staleness still counts from the last load)."""
        self._reload_due = True
        self._failed_at = None

    def _age(self, since: float) -> float:
        return self.clock() - since

    def _reload_wanted(self) -> bool:
        return (
            self._loaded_at is None
            or self._reload_due
            or self._age(self._loaded_at) > self.refresh_seconds
        )

    def _usable(self) -> bool:
        return (
            self._loaded_at is not None and self._age(self._loaded_at) <= self.max_staleness_seconds
        )

    async def _reload(self) -> None:
        try:
            revoked = await self.load_revoked()
        except Exception as exc:  # any failure: logged, counted, and bounded by the staleness
            self._failed_at = self.clock()
            REVOCATION_RELOAD_FAILURES.inc()
            _log.warning(
                "revoked-token list reload failed",
                error=type(exc).__name__,
                seconds_since_last_reload=(
                    round(self._age(self._loaded_at), 1) if self._loaded_at is not None else None
                ),
                refusing=not self._usable(),
            )
            return
        if self._failed_at is not None:
            _log.info("revoked-token list reloaded again", revoked=len(revoked))
        self._revoked = frozenset(revoked)
        self._loaded_at = self.clock()
        self._failed_at = None
        self._reload_due = False
        REVOCATION_RELOADED.set(time.time())

    def _stale_detail(self) -> str:
        if self._loaded_at is None:
            since = "has not been read yet"
        else:
            since = f"was last read {self._age(self._loaded_at):.0f} s ago"
        return (
            f"The list of revoked tokens {since} (the service database does not answer its "
            "query), so no token can be trusted and authenticated requests are refused until "
            "it reads again. Retry in a few seconds; if this persists, check the service's "
            "database connection (GET /readyz)."
        )
