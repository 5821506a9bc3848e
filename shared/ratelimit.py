"""Per-token rate limits: one token bucket per (tenant, token id, reads|writes), in process.

Every ``/v1/…`` request whose bearer token verifies takes one token from its bucket; an empty
bucket is answered 429 problem+json with ``Retry-After`` (whole seconds until a token is back)
before the body is read or the database touched. Buckets are keyed by the token's tenant *and*
id, so one tenant's traffic (or one of its integrations) never spends another's quota. Reads
(GET, HEAD, OPTIONS) and writes have separate buckets, so an ingest storm does not lock a
tenant's dashboards out. Requests without a valid token pass through untouched: the auth
dependency answers them 401, and the unauthenticated routes (``/healthz``, ``/readyz``,
``/metrics``, ``/docs``, ``/openapi.json``, ``/r/{code}``, ``/dashboard``) are outside ``/v1/``.

Settings (both services): ``rate_limit_per_second`` (refill rate, default 200; 0 disables)
and ``rate_limit_burst`` (bucket size, default 400), env ``CLIPFUNNEL_RATE_LIMIT_PER_SECOND``
and ``CLIPFUNNEL_RATE_LIMIT_BURST``.

The buckets live in each process. With N replicas (or N uvicorn workers) behind a load
balancer a token can therefore reach up to N× the configured rate: configure the per-process
share (the cluster-wide rate divided by N). For an exact cluster-wide limit, back
``TokenBuckets.take`` with Redis: the same refill arithmetic in a Lua script (``HMGET`` tokens
and timestamp, refill, decrement, ``HSET`` and ``PEXPIRE`` by burst/rate) keyed by
``rl:{tenant}:{token id}:{class}``, run with ``EVALSHA`` — one round trip per request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import decode_token
from shared.errors import TooManyRequests, problem_response

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LIMITED_PREFIX = "/v1/"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Token buckets refilled at ``rate`` per second up to ``burst``; not thread-safe (one
    event loop per process needs no lock: ``take`` never awaits)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sweep_every: int = 10_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, _Bucket] = {}
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def take(self, key: Hashable) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            self._maybe_sweep(now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)

    def _maybe_sweep(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket: forget it, so the
        # map holds only recently active tokens instead of every token ever seen.
        self._since_sweep += 1
        if self._since_sweep < self._sweep_every:
            return
        self._since_sweep = 0
        full_after = self.burst / self.rate
        idle = [k for k, b in self._buckets.items() if now - b.updated >= full_after]
        for key in idle:
            del self._buckets[key]


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
    """ASGI middleware applying :class:`TokenBuckets` to every authenticated ``/v1/`` request."""

    def __init__(self, app: ASGIApp, *, secret: str, per_second: float, burst: int) -> None:
        self.app = app
        self.secret = secret
        self.enabled = per_second > 0
        size = max(1, burst)
        self.reads = TokenBuckets(per_second, size) if self.enabled else None
        self.writes = TokenBuckets(per_second, size) if self.enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            not self.enabled
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
        buckets = self.reads if scope.get("method", "GET") in READ_METHODS else self.writes
        assert buckets is not None
        wait = buckets.take((principal.tenant_id, principal.token_id))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        label_route(scope)
        scope.setdefault("state", {})["tenant_id"] = principal.tenant_id
        retry_after = max(1, math.ceil(wait))
        kind = "read" if buckets is self.reads else "write"
        response = problem_response(
            TooManyRequests.status,
            TooManyRequests.title,
            f"This token has used its {kind} quota ({buckets.rate:g} requests/s, bursts of "
            f"{buckets.burst:g}); retry after {retry_after} s.",
            type_slug=TooManyRequests.type_slug,
            headers={"Retry-After": str(retry_after)},
            instance=str(scope.get("path", "")),
        )
        await response(scope, receive, send)
