"""Per-token rate limits with the ``limits`` library, shared by every replica through Redis.

Every ``/v1/…`` request whose bearer token verifies counts against the limit of its tenant and
token id, reads (GET, HEAD, OPTIONS) and writes separately; over the limit it is answered 429
problem+json with ``Retry-After`` (the whole seconds after which the oldest counted request has
left the window) before the body is read or the database touched. Limits are keyed by the
service, the token's tenant *and* id, so one tenant's traffic (or one of its integrations)
never spends another's quota, and an ingest storm does not lock a tenant's dashboards out.
Requests without a valid token pass through untouched: the auth dependency answers them 401,
and the unauthenticated routes (``/healthz``, ``/readyz``, ``/metrics``, ``/docs``,
``/openapi.json``, ``/r/{code}``, ``/dashboard``) are outside ``/v1/``.

The strategy is the moving window: at most ``rate_limit_burst`` requests in any window of
``burst / rate_limit_per_second`` seconds (rounded up to whole seconds), which is the burst at
once and the rate sustained. Defaults: 400 per 2 s, reads and writes each; a rate of 0 disables
the limits. It is exact, at the cost of one timestamp per counted request (a list of at most
``burst`` entries per active token and class).

With ``CLIPFUNNEL_REDIS_URL`` set, the windows live in Redis (one Lua script per request), so N
replicas or uvicorn workers share one limit. While Redis does not answer, each process limits on
its own (in memory) and tries Redis again every few seconds; that is logged and counted
(``clipfunnel_rate_limit_storage_errors_total``), never a refused request. Without Redis the
windows live in each process: with N replicas a token can reach N× the configured rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import coredis
import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import decode_token
from shared.errors import TooManyRequests, problem_for
from shared.metrics import RATE_LIMIT_STORAGE_ERRORS

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LIMITED_PREFIX = "/v1/"
REDIS_KEY_PREFIX = "clipfunnel:ratelimit"
# After a Redis failure, limit in memory for this long before trying Redis again.
REDIS_RETRY_SECONDS = 5.0
# A Redis that takes longer than this to connect or answer counts as down.
REDIS_TIMEOUT_SECONDS = 0.5

_log = structlog.get_logger("clipfunnel.ratelimit")


def limits_storage_uri(redis_url: str) -> str:
    """The ``limits`` storage URI of a Redis URL (its asyncio flavour)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


class TokenLimiter:
    """Moving-window limits per (namespace, class, tenant, token id): in Redis when a URL is
    given, else (and while Redis is down) in this process."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        namespace: str,
        redis_url: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be > 0 and burst >= 1")
        self.burst = burst
        self.window_seconds = max(1, math.ceil(burst / per_second))
        self.item: RateLimitItem = RateLimitItemPerSecond(burst, self.window_seconds)
        self.namespace = namespace
        self._clock = clock
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: AsyncMovingWindow | None = None
        self._pool: coredis.ConnectionPool | None = None
        if redis_url:
            # Our own pool (a documented option of the storage), so that close() can close it.
            self._pool = coredis.ConnectionPool.from_url(
                redis_url,
                connect_timeout=REDIS_TIMEOUT_SECONDS,
                stream_timeout=REDIS_TIMEOUT_SECONDS,
            )
            storage = RedisStorage(
                limits_storage_uri(redis_url),
                wrap_exceptions=True,
                key_prefix=REDIS_KEY_PREFIX,
                # The storage's options are annotated as scalars; a pool is what it documents.
                connection_pool=self._pool,  # type: ignore[arg-type]
            )
            self._redis = AsyncMovingWindow(storage)
        self._redis_down_until = -math.inf

    def close(self) -> None:
        """Close the connections to Redis (at shutdown)."""
        if self._pool is not None:
            self._pool.disconnect()

    @property
    def shared(self) -> bool:
        """Whether the limits are (meant to be) shared through Redis."""
        return self._redis is not None

    async def take(self, kind: str, tenant_id: str, token_id: str) -> float:
        """Count one request: 0.0 when it is within the limit, else the seconds to wait."""
        keys = (self.namespace, kind, tenant_id, token_id)
        if self._redis is not None and self._clock() >= self._redis_down_until:
            try:
                if await self._redis.hit(self.item, *keys):
                    return 0.0
                stats = await self._redis.get_window_stats(self.item, *keys)
                return max(0.0, stats.reset_time - time.time())
            except StorageError as exc:
                self._redis_down_until = self._clock() + REDIS_RETRY_SECONDS
                RATE_LIMIT_STORAGE_ERRORS.inc()
                _log.warning(
                    "rate-limit storage unavailable; limiting in this process",
                    error=type(exc.storage_error).__name__,
                    retry_in_seconds=REDIS_RETRY_SECONDS,
                )
        # In memory: microseconds, no I/O, so the synchronous limiter is fine here.
        if self._memory.hit(self.item, *keys):
            return 0.0
        stats = self._memory.get_window_stats(self.item, *keys)
        return max(0.0, stats.reset_time - time.time())


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            text: str = bytes(value).decode("latin-1")
            scheme, _, token = text.partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def flat_routes(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Every route an app serves, with included routers expanded (FastAPI ≥ 0.13x keeps them
    as lazy ``_IncludedRouter`` entries in ``app.routes``; ``iter_route_contexts`` resolves
    them). Each item has ``path``, ``methods``, ``matches`` and ``original_route``."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        for route in routes:
            yield _Flat(route)
        return
    yield from iter_route_contexts(list(routes))


@dataclass(frozen=True, slots=True)
class _Flat:
    route: BaseRoute

    @property
    def original_route(self) -> BaseRoute:
        return self.route

    @property
    def path(self) -> str | None:
        return getattr(self.route, "path", None)

    @property
    def methods(self) -> set[str] | None:
        return getattr(self.route, "methods", None)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return self.route.matches(scope)


def label_route(scope: Scope) -> None:
    """Put the matching route in the scope, so metrics and logs name its template even when a
    middleware answers before routing."""
    app = scope.get("app")
    partial = None
    for route in flat_routes(getattr(app, "routes", ())):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            scope["route"] = route.original_route
            return
        if match is Match.PARTIAL and partial is None:
            partial = route.original_route
    if partial is not None:
        scope["route"] = partial


class RateLimitMiddleware:
    """ASGI middleware applying a :class:`TokenLimiter` to every authenticated ``/v1/`` request
    (``limiter`` None: no limit)."""

    def __init__(self, app: ASGIApp, *, secret: str, limiter: TokenLimiter | None) -> None:
        self.app = app
        self.secret = secret
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.limiter is None
            or scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(LIMITED_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        try:
            principal = decode_token(self.secret, token)
        except Exception:
            # Not a valid token: the auth dependency answers 401 with the reason.
            await self.app(scope, receive, send)
            return
        kind = "read" if scope.get("method", "GET") in READ_METHODS else "write"
        wait = await self.limiter.take(kind, principal.tenant_id, principal.token_id)
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        label_route(scope)
        scope.setdefault("state", {})["tenant_id"] = principal.tenant_id
        # Strictly more than the wait: the window includes its first instant.
        retry_after = math.floor(wait) + 1
        refusal = TooManyRequests(
            f"This token has used its {kind} quota ({self.limiter.burst} requests per "
            f"{self.limiter.window_seconds} s); retry after {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
        response = problem_for(refusal, str(scope.get("path", "")))
        await response(scope, receive, send)
