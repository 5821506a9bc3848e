"""Per-token rate limits: 429 problem+json with Retry-After; one token's quota is its own;
with Redis, every replica shares one limit.

The limits are independent of the database, so these run on SQLite only. The Redis tests use
the server at 127.0.0.1:6379 and skip when it does not answer, unless
``CLIPFUNNEL_REQUIRE_REDIS=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog
import time_machine
from prometheus_client import REGISTRY

from shared.auth import mint_token
from shared.errors import PROBLEM_JSON
from shared.ratelimit import TokenLimiter, limits_storage_uri
from tests.conftest import TEST_SECRET, Templates, auth, new_tenant
from tests.ops_http.apps import Stack, sqlite_stack

BURST = 3
WINDOW = 6  # seconds: 3 requests at 0.5/s
LIMITS = {"rate_limit_per_second": 0.5, "rate_limit_burst": BURST}
START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """Wall-clock time stands still at START until a test moves it."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


async def test_a_burst_passes_then_the_wait_is_until_the_oldest_leaves_the_window(
    clock: time_machine.Traveller,
) -> None:
    limiter = TokenLimiter(0.5, BURST, namespace="test")
    assert limiter.window_seconds == WINDOW
    for _ in range(BURST):  # at 0, 1 and 2 s
        assert await limiter.take("read", "t1", "k") == 0.0
        clock.shift(1)
    clock.shift(-1)
    assert await limiter.take("read", "t1", "k") == pytest.approx(WINDOW - 2)
    clock.shift(WINDOW - 2 - 0.01)
    assert await limiter.take("read", "t1", "k") == pytest.approx(0.01)
    clock.shift(0.02)  # past 6 s the request of 0 s has left the window: one more is allowed
    assert await limiter.take("read", "t1", "k") == 0.0
    assert await limiter.take("read", "t1", "k") == pytest.approx(0.99)  # the one of 1 s
    # Another class, tenant or token id has its own window.
    assert await limiter.take("write", "t1", "k") == 0.0
    assert await limiter.take("read", "t2", "k") == 0.0
    assert await limiter.take("read", "t1", "other") == 0.0


def test_the_window_is_burst_over_rate_in_whole_seconds() -> None:
    assert TokenLimiter(200, 400, namespace="t").window_seconds == 2
    assert TokenLimiter(3, 10, namespace="t").window_seconds == 4
    assert TokenLimiter(1000, 10, namespace="t").window_seconds == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="per_second"):
        TokenLimiter(0, 10, namespace="t")
    with pytest.raises(ValueError, match="burst"):
        TokenLimiter(1, 0, namespace="t")


def test_redis_urls_map_to_the_asyncio_storage() -> None:
    assert limits_storage_uri("redis://h:6379/2") == "async+redis://h:6379/2"
    assert limits_storage_uri("rediss://u:p@h:6380") == "async+rediss://u:p@h:6380"
    assert limits_storage_uri("unix:///run/redis.sock") == "async+redis+unix:///run/redis.sock"


@pytest.fixture
async def stack(_templates: Templates, tmp_path: Path) -> AsyncIterator[Stack]:
    async with sqlite_stack(_templates, tmp_path, catalog=LIMITS, attribution=LIMITS) as s:
        yield s


def token(tenant: str, *scopes: str) -> dict[str, str]:
    return auth(mint_token(TEST_SECRET, tenant, scopes or ("admin",)))


def counted(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "route": route, "status": status}
    )
    return value or 0.0


async def test_a_token_over_its_quota_gets_429_with_retry_after(
    stack: Stack, clock: time_machine.Traveller
) -> None:
    a = token(new_tenant())
    before = counted("/v1/accounts", "429")
    statuses = [(await stack.catalog.get("/v1/accounts", headers=a)).status_code for _ in range(4)]
    assert statuses == [200] * BURST + [429]
    clock.shift(1)
    response = await stack.catalog.get("/v1/accounts", headers=a)
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    # The first requests leave the 6 s window 5 s from now; Retry-After is a whole second more.
    assert response.headers["retry-after"] == str(WINDOW)
    problem = response.json()
    assert problem["status"] == 429
    assert problem["type"].endswith("/rate-limited")
    assert f"retry after {WINDOW} s" in problem["detail"]
    assert f"{BURST} requests per {WINDOW} s" in problem["detail"]
    # Counted under its route template, like every other answer.
    assert counted("/v1/accounts", "429") == before + 2
    # Retry-After is honest: after that many seconds the token is served again.
    clock.shift(WINDOW - 2)
    assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 429
    clock.shift(2)
    assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 200


async def test_one_tenants_traffic_never_uses_anothers_quota(stack: Stack) -> None:
    a, b = token(new_tenant()), token(new_tenant())
    for _ in range(BURST + 2):
        await stack.catalog.get("/v1/accounts", headers=a)
    assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 429
    statuses = [(await stack.catalog.get("/v1/accounts", headers=b)).status_code for _ in range(3)]
    assert statuses == [200] * 3
    # Same tenant, another token (another integration): its own quota too.
    tenant = new_tenant()
    first, second = token(tenant), token(tenant)
    for _ in range(BURST + 1):
        await stack.catalog.get("/v1/accounts", headers=first)
    assert (await stack.catalog.get("/v1/accounts", headers=first)).status_code == 429
    assert (await stack.catalog.get("/v1/accounts", headers=second)).status_code == 200
    # The other service keeps its own limits.
    assert (await stack.attribution.get("/v1/settings", headers=a)).status_code == 200


async def test_reads_and_writes_have_separate_limits(stack: Stack) -> None:
    a = token(new_tenant())
    for _ in range(BURST):
        assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 200
    assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 429
    body = {"platform": "douyin", "handle": "@a"}
    response = await stack.catalog.put("/v1/accounts/acc-1", json=body, headers=a)
    assert response.status_code == 201


async def test_unauthenticated_routes_and_bad_tokens_are_not_limited(stack: Stack) -> None:
    a = token(new_tenant())
    for _ in range(BURST + 1):
        await stack.attribution.get("/v1/settings", headers=a)
    assert (await stack.attribution.get("/v1/settings", headers=a)).status_code == 429
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/r/no-such-code"):
        for _ in range(BURST + 2):
            response = await stack.attribution.get(path, headers=a)
            assert response.status_code != 429, path
    # No token, or a forged one: the auth answer (401), never someone's quota.
    forged = auth("cf1.eyJ0aWQiOiJ4In0.AAAA")
    for headers in ({}, forged):
        for _ in range(BURST + 2):
            response = await stack.attribution.get("/v1/settings", headers=headers)
            assert response.status_code == 401


async def test_zero_disables_the_limit(templates: Templates, tmp_path: Path) -> None:
    off = {"rate_limit_per_second": 0, "rate_limit_burst": 1}
    async with sqlite_stack(templates, tmp_path, catalog=off) as stack:
        a = token(new_tenant())
        for _ in range(20):
            assert (await stack.catalog.get("/v1/accounts", headers=a)).status_code == 200


async def test_defaults_are_200_per_second_with_bursts_of_400(stack: Stack) -> None:
    from services.attribution.config import AttributionSettings

    settings = AttributionSettings(secret=TEST_SECRET, database_url="sqlite+aiosqlite://")
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (200.0, 400)


async def test_a_burst_of_the_default_size_passes(templates: Templates, tmp_path: Path) -> None:
    async with sqlite_stack(templates, tmp_path) as stack:
        a = token(new_tenant())
        client: httpx.AsyncClient = stack.attribution
        statuses = {(await client.get("/v1/settings", headers=a)).status_code for _ in range(400)}
        assert statuses == {200}


# --- shared through Redis ------------------------------------------------------------------


def redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    if not redis_answers():
        if os.environ.get("CLIPFUNNEL_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required but does not answer at {REDIS_URL}")
        pytest.skip(f"Redis does not answer at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
async def replicas(
    _templates: Templates, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Stack, Stack]]:
    """Two replicas of both services, sharing one Redis."""
    shared = {**LIMITS, "redis_url": redis_url}
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    async with (
        sqlite_stack(_templates, tmp_path / "one", catalog=shared, attribution=shared) as one,
        sqlite_stack(_templates, tmp_path / "two", catalog=shared, attribution=shared) as two,
    ):
        yield one, two


async def test_replicas_sharing_redis_share_one_limit(replicas: tuple[Stack, Stack]) -> None:
    one, two = replicas
    a = token(new_tenant())
    statuses = [
        (await replica.catalog.get("/v1/accounts", headers=a)).status_code
        for replica in (one, two, one, two, one)
    ]
    assert statuses == [200] * BURST + [429] * 2
    response = await two.catalog.get("/v1/accounts", headers=a)
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW
    # Still one quota per tenant, token, class and service.
    assert (await one.catalog.get("/v1/accounts", headers=token(new_tenant()))).status_code == 200
    body = {"platform": "douyin", "handle": "@a"}
    assert (await two.catalog.put("/v1/accounts/a1", json=body, headers=a)).status_code == 201
    assert (await two.attribution.get("/v1/settings", headers=a)).status_code == 200


async def test_an_unreachable_redis_falls_back_to_limits_in_each_process(
    templates: Templates, tmp_path: Path
) -> None:
    nowhere = {**LIMITS, "redis_url": "redis://127.0.0.1:9/0"}  # the discard port: refused
    before = REGISTRY.get_sample_value("clipfunnel_rate_limit_storage_errors_total") or 0.0
    async with sqlite_stack(templates, tmp_path, catalog=nowhere) as stack:
        a = token(new_tenant())
        with structlog.testing.capture_logs() as logs:
            statuses = [
                (await stack.catalog.get("/v1/accounts", headers=a)).status_code for _ in range(4)
            ]
        assert statuses == [200] * BURST + [429]
    # One failure, then Redis is left alone for a few seconds rather than tried per request.
    after = REGISTRY.get_sample_value("clipfunnel_rate_limit_storage_errors_total")
    assert after == before + 1
    warnings = [e for e in logs if e["event"].startswith("rate-limit storage unavailable")]
    assert len(warnings) == 1
