"""Keeping the local read model of the catalog current by pulling the change feed.

A change the read model cannot take (a value it cannot parse or hold, one the database
refuses) is recorded in ``catalog_sync_skipped``, counted and logged, and the feed moves past
it: one tenant's bad object never stops the sync of every tenant behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from services.attribution.catalog_sync import repository
from services.attribution.catalog_sync.metrics import CATALOG_SYNC_SKIPPED
from services.attribution.catalog_sync.projection import (
    Row,
    Unappliable,
    parse_change,
    project,
)
from services.attribution.catalog_sync.repository import STATE_KEY, current_seq
from services.attribution.core.metrics import CATALOG_SYNC_LAG
from shared.auth import ALL_TENANTS, mint_token
from shared.db import utcnow
from shared.errors import ProblemError, ServiceUnavailable

__all__ = ["STATE_KEY", "CatalogFeedError", "CatalogSync", "CatalogUnreachable", "current_seq"]

log = logging.getLogger("clipfunnel.catalog_sync")
PAGE_SIZE = 1000
# A reason is stored and logged whole up to this many characters.
_REASON_CHARS = 1000


class CatalogUnreachable(ServiceUnavailable):
    type_slug, title = "catalog-unreachable", "Catalog unreachable"


class CatalogFeedError(ProblemError):
    """The catalog answered, but not with a change feed this service can read."""

    status, type_slug, title = 502, "catalog-feed-error", "Catalog change feed unusable"


@dataclass(frozen=True)
class _Planned:
    """A fresh feed entry and what it does: a row, nothing (an entity not kept), or a skip."""

    raw: dict[str, Any]
    row: Row | None = None
    reason: str | None = None


def plan(raw: dict[str, Any]) -> _Planned:
    try:
        return _Planned(raw, row=project(parse_change(raw)))
    except Unappliable as exc:
        return _Planned(raw, reason=str(exc))


def page_changes(feed: Any) -> list[dict[str, Any]]:
    """The entries of one feed page, each with an integer ``seq``, in increasing order."""
    changes = feed.get("changes") if isinstance(feed, dict) else None
    if not isinstance(changes, list) or not all(
        isinstance(c, dict) and type(c.get("seq")) is int for c in changes
    ):
        raise CatalogFeedError(
            "The catalog answered the change feed with something that is not one (each "
            "change needs an integer `seq`); check that ATTRIBUTION_CATALOG_URL points at "
            "the catalog service."
        )
    seqs = [c["seq"] for c in changes]
    if seqs != sorted(set(seqs)):
        raise CatalogFeedError("The catalog's change feed page is not in increasing `seq` order.")
    return changes


@dataclass
class CatalogSync:
    """Pulls the catalog's change feed into the read model; one per app.

    ``clock`` (monotonic seconds) and ``sleep`` are the loop's time, so tests can drive it.
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient
    secret: str
    interval_seconds: float = 2.0
    max_backoff_seconds: float = 60.0
    # No successful pull for this long, for any reason but an unreachable catalog, is a stall
    # (GET /readyz answers 503). Default: the longer of 10 intervals and 2 longest backoffs.
    stall_after_seconds: float | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_caught_up: float | None = None  # clock time the feed was last read to its end
    started: float = field(init=False)
    last_error: str | None = None  # the latest pull's failure, None after a success
    catalog_unreachable: bool = False  # whether that failure was the catalog not answering

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def stall_seconds(self) -> float:
        if self.stall_after_seconds is not None:
            return self.stall_after_seconds
        return max(10 * self.interval_seconds, 2 * self.max_backoff_seconds)

    def _token(self) -> str:
        return mint_token(self.secret, ALL_TENANTS, ["catalog:sync"], ttl_seconds=300)

    async def pull(self) -> int:
        """Read the feed to its end and apply it; returns the catalog sequence reached."""
        async with self.lock:
            try:
                seq = await self._pull_to_end()
            except CatalogUnreachable as exc:
                self._failed(exc, unreachable=True)
                raise
            except Exception as exc:
                self._failed(exc, unreachable=False)
                raise
            self.last_error = None
            self.catalog_unreachable = False
            self.last_caught_up = self.clock()
            self.update_lag()
            return seq

    def _failed(self, exc: Exception, *, unreachable: bool) -> None:
        detail = exc.detail if isinstance(exc, ProblemError) else str(exc)
        self.last_error = f"{type(exc).__name__}: {detail}"[:_REASON_CHARS]
        self.catalog_unreachable = unreachable

    async def _pull_to_end(self) -> int:
        headers = {"Authorization": f"Bearer {self._token()}"}
        while True:
            async with self.sessionmaker() as session:
                after = await current_seq(session)
            changes = await self._fetch(after, headers)
            if changes:
                await self._apply(changes)
            if len(changes) < PAGE_SIZE:
                async with self.sessionmaker() as session:
                    return await current_seq(session)

    async def _fetch(self, after: int, headers: dict[str, str]) -> list[dict[str, Any]]:
        try:
            response = await self.client.get(
                "/v1/changes", params={"after": after, "limit": PAGE_SIZE}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise self._unreachable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise CatalogFeedError(
                f"The catalog refused the change feed (HTTP {response.status_code}); check "
                "that both services share CLIPFUNNEL_SECRET and ATTRIBUTION_CATALOG_URL points "
                "at the catalog."
            )
        try:
            feed = response.json()
        except ValueError:
            feed = None
        return page_changes(feed)

    @staticmethod
    def _unreachable(why: str) -> CatalogUnreachable:
        return CatalogUnreachable(
            f"The catalog service did not answer the change feed ({why}); "
            "attribution keeps serving with the catalog data it has.",
            headers={"Retry-After": "5"},
        )

    async def _apply(self, changes: Sequence[dict[str, Any]]) -> None:
        async with self.sessionmaker() as session:
            state = await repository.lock_state(session)
            fresh = [plan(c) for c in changes if c["seq"] > state.catalog_seq]
            if fresh:
                await self._apply_planned(session, fresh)
                state.catalog_seq = fresh[-1].raw["seq"]
                state.last_change_at = utcnow()
            state.last_success_at = utcnow()
            await session.commit()

    async def _apply_planned(self, session: AsyncSession, planned: list[_Planned]) -> None:
        rows = [p.row for p in planned if p.row is not None]
        try:
            # The whole page in one savepoint: the usual case, and the fast one.
            async with session.begin_nested():
                await repository.apply_rows(session, rows)
        except StatementError as exc:
            if not _refused(exc):
                raise
            # The database refused one of them: apply each in its own savepoint to find it.
            planned = [await self._apply_one(session, p) for p in planned]
        for skipped in planned:
            if skipped.reason is not None:
                await self._skip(session, skipped.raw, skipped.reason)

    @staticmethod
    async def _apply_one(session: AsyncSession, planned: _Planned) -> _Planned:
        if planned.row is None:
            return planned
        try:
            async with session.begin_nested():
                await repository.apply_rows(session, [planned.row])
        except StatementError as exc:
            if not _refused(exc):
                raise
            # The driver's message without the statement and its parameters.
            message = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            return _Planned(planned.raw, reason=f"the database refused it: {message}")
        return planned

    async def _skip(self, session: AsyncSession, raw: dict[str, Any], reason: str) -> None:
        reason = reason[:_REASON_CHARS]
        entity = _label(raw.get("entity"), 64)
        log.warning(
            "catalog change %s skipped (tenant %s, %s %s, %s): %s",
            raw["seq"],
            raw.get("tenant_id"),
            raw.get("entity"),
            raw.get("id"),
            raw.get("op"),
            reason,
        )
        CATALOG_SYNC_SKIPPED.labels(entity).inc()
        await repository.record_skipped(
            session,
            seq=raw["seq"],
            tenant_id=_label(raw.get("tenant_id"), 128),
            entity=entity,
            entity_id=_label(raw.get("id"), 300),
            op=_label(raw.get("op"), 16),
            reason=reason,
            # ensure_ascii: control characters (NUL included) become escapes any column holds.
            change=json.dumps(raw, ensure_ascii=True, sort_keys=True, default=str),
            at=utcnow(),
        )

    def update_lag(self) -> float:
        reference = self.last_caught_up if self.last_caught_up is not None else self.started
        lag = max(0.0, self.clock() - reference)
        CATALOG_SYNC_LAG.set(lag)
        return lag

    def stall(self) -> str | None:
        """Why the sync has stopped advancing, or None while it keeps up (a readiness check).

        An unreachable catalog is not a stall of this service (it keeps serving with the
        catalog data it has; the lag metric and its alert say so); anything else that keeps
        pulls from succeeding for ``stall_seconds`` is.
        """
        if self.catalog_unreachable:
            return None
        behind = self.update_lag()
        if behind <= self.stall_seconds:
            return None
        cause = self.last_error or "a pull has been running without finishing"
        return (
            f"The catalog sync has not advanced for {behind:.0f} s (more than "
            f"{self.stall_seconds:g} s): {cause}"
        )

    async def run_forever(self) -> None:
        """Pull every ``interval_seconds``; after a failure retry with exponential backoff
        (jittered, at most ``max_backoff_seconds``), for ever."""
        while True:
            async for attempt in self._retrying():
                with attempt:
                    await self.pull()
            await self.sleep(self.interval_seconds)

    def _retrying(self) -> AsyncRetrying:
        # Jitter of up to one interval keeps replicas from retrying in step.
        backoff = wait_exponential_jitter(
            multiplier=self.interval_seconds,
            max=self.max_backoff_seconds,
            jitter=self.interval_seconds,
        )
        return AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=backoff,
            sleep=self.sleep,
            before_sleep=self._before_retry,
        )

    def _before_retry(self, state: RetryCallState) -> None:
        self.update_lag()
        wait = state.upcoming_sleep
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, CatalogUnreachable):
            log.warning("catalog unreachable; next try in %.1fs", wait)
        else:
            log.error("catalog sync failed; next try in %.1fs", wait, exc_info=failure)


def _refused(exc: StatementError) -> bool:
    """Whether the database (or a column type, binding the value) refused the values, as
    opposed to failing (a lost connection, a timeout), which a later pull retries."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, IntegrityError | DataError)
    return True


def _label(value: Any, length: int) -> str:
    return value[:length] if isinstance(value, str) else ""
