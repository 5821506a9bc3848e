"""Per-token rate limits: 429 problem+json with Retry-After; one token's quota is its own.

The limiter is in-process and independent of the database, so these run on SQLite only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from shared.auth import mint_token
from shared.errors import PROBLEM_JSON
from shared.ratelimit import TokenBuckets
from tests.conftest import TEST_SECRET, Templates, auth, new_tenant
from tests.ops_http.apps import Stack, sqlite_stack

BURST = 3
LIMITS = {"rate_limit_per_second": 0.5, "rate_limit_burst": BURST}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(2.0, 3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)  # one token every 1/2 s
    clock.now += 0.5
    assert buckets.take("k") == 0.0
    assert buckets.take("k") == pytest.approx(0.5)
    clock.now += 100  # refills to the burst, never beyond
    assert [buckets.take("k") for _ in range(4)][-1] > 0
    assert buckets.take("other") == 0.0  # another key has its own bucket


def test_idle_buckets_are_forgotten() -> None:
    clock = Clock()
    buckets = TokenBuckets(10.0, 5, clock=clock, sweep_every=3)
    for key in ("a", "b", "c"):
        buckets.take(key)
    clock.now += 1.0  # 5 tokens / 10 per s: full again after 0.5 s
    for key in ("d", "e", "f"):
        buckets.take(key)
    assert len(buckets) == 3


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(0, 10)
    with pytest.raises(ValueError):
        TokenBuckets(1, 0)


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


async def test_a_token_over_its_quota_gets_429_with_retry_after(stack: Stack) -> None:
    a = token(new_tenant())
    before = counted("/v1/accounts", "429")
    statuses = [(await stack.catalog.get("/v1/accounts", headers=a)).status_code for _ in range(4)]
    assert statuses == [200] * BURST + [429]
    response = await stack.catalog.get("/v1/accounts", headers=a)
    assert response.status_code == 429
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"].isdigit()
    assert 1 <= int(response.headers["retry-after"]) <= 2  # 1 token at 0.5/s
    problem = response.json()
    assert problem["status"] == 429
    assert problem["type"].endswith("/rate-limited")
    assert "retry after" in problem["detail"]
    # Counted under its route template, like every other answer.
    assert counted("/v1/accounts", "429") == before + 2


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
    # The other service keeps its own buckets.
    assert (await stack.attribution.get("/v1/settings", headers=a)).status_code == 200


async def test_reads_and_writes_have_separate_buckets(stack: Stack) -> None:
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
