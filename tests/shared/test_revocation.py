"""Revocation: the shared queries over both services' tables, and the verifier's bounded
staleness (a list it cannot re-read is trusted for 30 s, then every authenticated route is 503).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
import structlog
import time_machine
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS
from services.attribution.models import RevokedToken as AttributionRevokedToken
from services.catalog.app import MIGRATIONS as CATALOG_MIGRATIONS
from services.catalog.models import RevokedToken as CatalogRevokedToken
from shared.auth import mint_token
from shared.db import make_engine
from shared.errors import PROBLEM_JSON, RevocationListStale, Unauthorized
from shared.migrate import MigrationSpec
from shared.revocation import (
    RevokedTable,
    TokenVerifier,
    revoke,
    revoke_token_id,
    revoked_token_ids,
)
from tests.conftest import TEST_SECRET, DatabaseFactory, auth, new_tenant

REVOKED_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """A revoked list that can be made to fail, counting its calls."""

    def __init__(self, *revoked: tuple[str, str]) -> None:
        self.revoked = set(revoked)
        self.failing = False
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> set[tuple[str, str]]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise ConnectionRefusedError("database down")
        return set(self.revoked)


def failures() -> float:
    return REGISTRY.get_sample_value("clipfunnel_revocation_reload_failures_total") or 0.0


def verifier_with(loader: Loader, clock: Clock) -> TokenVerifier:
    return TokenVerifier(TEST_SECRET, loader, clock=clock)


# --- the verifier, on a fake list and clock ------------------------------------------------


async def test_a_revoked_token_is_refused_and_the_list_is_reread_every_5_s() -> None:
    clock, loader = Clock(), Loader(("t1", "gone"))
    verifier = verifier_with(loader, clock)
    kept = mint_token(TEST_SECRET, "t1", ["admin"], token_id="kept")
    assert (await verifier.verify(kept)).token_id == "kept"
    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(mint_token(TEST_SECRET, "t1", ["admin"], token_id="gone"))
    # Revocation is per tenant: the same id under another tenant is another token.
    assert await verifier.verify(mint_token(TEST_SECRET, "t2", ["admin"], token_id="gone"))
    assert loader.calls == 1
    loader.revoked.add(("t1", "kept"))
    clock.now += 5
    await verifier.verify(kept)  # still within the refresh interval
    clock.now += 0.1
    with pytest.raises(Unauthorized, match="revoked"):
        await verifier.verify(kept)
    assert loader.calls == 2


async def test_a_failed_reload_keeps_the_last_list_for_30_s_then_refuses() -> None:
    clock, loader = Clock(), Loader(("t1", "gone"))
    verifier = verifier_with(loader, clock)
    token = mint_token(TEST_SECRET, "t1", ["admin"], token_id="ok")
    await verifier.verify(token)
    loader.failing = True
    before = failures()
    with structlog.testing.capture_logs() as logs:
        for step in range(1, 31):  # up to 30 s after the last successful reload
            clock.now += 1
            await verifier.verify(token)
            assert loader.calls == (step - 4 if step > 5 else 1)
        assert failures() == before + 25
        clock.now += 1
        with pytest.raises(RevocationListStale) as caught:
            await verifier.verify(token)
    assert "last read 31 s ago" in caught.value.detail
    assert "check the service's database" in caught.value.detail
    assert caught.value.status == 503
    assert caught.value.headers["Retry-After"] == "5"
    warnings = [e for e in logs if e["event"] == "revoked-token list reload failed"]
    assert len(warnings) == 26
    assert warnings[-1]["error"] == "ConnectionRefusedError"
    assert warnings[-1]["refusing"] is True
    assert warnings[0]["refusing"] is False
    # The database answers again: the next request reloads and is served.
    loader.failing = False
    clock.now += 1
    assert (await verifier.verify(token)).token_id == "ok"


async def test_failed_reloads_are_retried_at_most_every_second() -> None:
    clock, loader = Clock(), Loader()
    verifier = verifier_with(loader, clock)
    token = mint_token(TEST_SECRET, "t1", ["admin"])
    await verifier.verify(token)
    loader.failing = True
    clock.now += 6
    for _ in range(10):
        await verifier.verify(token)
    assert loader.calls == 2
    clock.now += 1
    await verifier.verify(token)
    assert loader.calls == 3


async def test_no_list_read_yet_means_refusing_at_once() -> None:
    clock, loader = Clock(), Loader()
    loader.failing = True
    verifier = verifier_with(loader, clock)
    with pytest.raises(RevocationListStale, match="has not been read yet"):
        await verifier.verify(mint_token(TEST_SECRET, "t1", ["admin"]))
    # A bad token is still told why it is bad (401), not 503.
    with pytest.raises(Unauthorized):
        await verifier.verify("not-a-token")


async def test_concurrent_requests_share_one_reload() -> None:
    clock, loader = Clock(), Loader()
    verifier = verifier_with(loader, clock)
    token = mint_token(TEST_SECRET, "t1", ["admin"])
    await verifier.verify(token)
    loader.gate = asyncio.Event()
    clock.now += 6
    waiting = [asyncio.ensure_future(verifier.verify(token)) for _ in range(20)]
    await asyncio.sleep(0)
    # One request reloads; the others go on with the list, which is only 6 s old.
    done = [task for task in waiting if task.done()]
    assert len(done) == 19
    loader.gate.set()
    await asyncio.gather(*waiting)
    assert loader.calls == 2


# --- the shared queries, on both services' tables and both databases ----------------------


@pytest.mark.parametrize(
    ("spec", "table"),
    [
        (CATALOG_MIGRATIONS, CatalogRevokedToken),
        (ATTRIBUTION_MIGRATIONS, AttributionRevokedToken),
    ],
    ids=["catalog", "attribution"],
)
async def test_revoking_is_idempotent_and_keeps_the_first_time(
    make_database: DatabaseFactory, spec: MigrationSpec, table: RevokedTable
) -> None:
    url = make_database(spec)
    with time_machine.travel(REVOKED_AT, tick=False):
        await revoke_token_id(url, table, "t1", "j1")
    with time_machine.travel(REVOKED_AT + dt.timedelta(days=1), tick=False):
        await revoke_token_id(url, table, "t1", "j1")
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await revoke(conn, table, "t2", "j1")
            assert await revoked_token_ids(conn, table) == {("t1", "j1"), ("t2", "j1")}
            stored = await conn.execute(select(table.revoked_at).where(table.tenant_id == "t1"))
            assert stored.scalar_one() == REVOKED_AT
    finally:
        await engine.dispose()


# --- the whole chain: a service whose revoked-token query fails ----------------------------


@pytest.fixture
async def catalog_client(catalog_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=catalog_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client:
        yield client


async def rename_table(database_url: str, old: str, new: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        await engine.dispose()


async def test_a_service_that_cannot_read_revocations_answers_503_after_30_s(
    catalog_app: FastAPI, catalog_client: httpx.AsyncClient
) -> None:
    clock = Clock()
    verifier: TokenVerifier = catalog_app.state.token_verifier
    verifier.clock = clock
    url = catalog_app.state.settings.database_url
    tenant = new_tenant()
    token = auth(mint_token(TEST_SECRET, tenant, ["catalog:read"], token_id="kept"))
    revoked = auth(mint_token(TEST_SECRET, tenant, ["catalog:read"], token_id="gone"))
    await revoke_token_id(url, CatalogRevokedToken, tenant, "gone")
    assert (await catalog_client.get("/v1/accounts", headers=token)).status_code == 200
    assert (await catalog_client.get("/v1/accounts", headers=revoked)).status_code == 401

    # The revoked-token query now fails in the database itself.
    await rename_table(url, "revoked_tokens", "revoked_tokens_away")
    before = failures()
    clock.now += 20
    assert (await catalog_client.get("/v1/accounts", headers=token)).status_code == 200
    assert (await catalog_client.get("/v1/accounts", headers=revoked)).status_code == 401
    assert failures() == before + 1
    clock.now += 11
    response = await catalog_client.get("/v1/accounts", headers=token)
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == "5"
    problem = response.json()
    assert problem["type"].endswith("/revocation-list-stale")
    assert "authenticated requests are refused" in problem["detail"]
    # Unauthenticated routes are unaffected.
    assert (await catalog_client.get("/healthz")).status_code == 200

    await rename_table(url, "revoked_tokens_away", "revoked_tokens")
    clock.now += 1
    assert (await catalog_client.get("/v1/accounts", headers=token)).status_code == 200
    assert (await catalog_client.get("/v1/accounts", headers=revoked)).status_code == 401
    reloaded = REGISTRY.get_sample_value("clipfunnel_revocation_reload_timestamp_seconds")
    assert reloaded is not None
    assert reloaded > 0
