"""The catalog sync: one change it cannot apply is recorded and skipped, never a stall of the
whole feed; the loop backs off and recovers; ``/readyz`` says when the sync stops advancing.

The reported case: ``PUT /v1/contents/v/products/p {"placement": "mention", "ends_at":
"0070-09-12T19:30:26Z"}`` was taken, fed as ``"70-09-12T19:30:26Z"``, and from then on every
tenant's ``POST /v1/sync`` was 500 and the background sync failed for ever.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from services.attribution.app import MIGRATIONS, create_app
from services.attribution.catalog_sync.projection import Unappliable, parse_change, project
from services.attribution.catalog_sync.service import CatalogSync
from services.attribution.models import CatalogAccount, CatalogContentProduct, CatalogTrackingLink
from services.attribution.models.catalog import SkippedCatalogChange
from services.catalog.changes.service import record_change
from services.catalog.models import ContentProduct
from tests.conftest import TEST_SECRET, DatabaseFactory, attribution_settings, auth, new_tenant

LEGACY_ENDS_AT = "70-09-12T19:30:26Z"  # what strftime("%Y…") wrote for year 70


class Tenant:
    """One tenant writing its catalog and syncing attribution, both through the APIs."""

    def __init__(
        self, catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, tenant_id: str, token: str
    ) -> None:
        self.catalog = catalog
        self.attribution = attribution
        self.tenant_id = tenant_id
        self.headers = auth(token)

    async def put(self, path: str, body: dict[str, Any], expect: int = 201) -> httpx.Response:
        response = await self.catalog.put(path, json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response

    async def world(self) -> None:
        """Content v (of account a) and product p, the ids of the report."""
        await self.put("/v1/accounts/a", {"platform": "douyin", "handle": "@glow"})
        await self.put("/v1/contents/v", {"kind": "video", "account_id": "a", "title": "Looks"})
        await self.put(
            "/v1/products/p", {"title": "Lipstick", "price": "129.90", "currency": "CNY"}
        )

    async def sync(self) -> httpx.Response:
        return await self.attribution.post("/v1/sync", headers=self.headers)


@pytest.fixture
def tenants(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, make_token: Callable[..., str]
) -> Callable[[], Tenant]:
    def make() -> Tenant:
        tenant_id = new_tenant()
        return Tenant(catalog, attribution, tenant_id, make_token(tenant_id, "admin"))

    return make


def skipped_count(entity: str) -> float:
    value = REGISTRY.get_sample_value("clipfunnel_catalog_sync_skipped_total", {"entity": entity})
    return value or 0.0


async def read_model(app: FastAPI, model: Any) -> list[Any]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(model)))


async def skipped(app: FastAPI) -> list[SkippedCatalogChange]:
    async with app.state.sessionmaker() as session:
        stmt = select(SkippedCatalogChange).order_by(SkippedCatalogChange.seq)
        return list(await session.scalars(stmt))


async def write_legacy_link(catalog_app: FastAPI, tenant_id: str) -> int:
    """What the catalog stored and fed for the reported PUT before timestamps had four-digit
    years: the link row with year 70, and a feed entry the sync cannot parse."""
    ends_at = dt.datetime(70, 9, 12, 19, 30, 26, tzinfo=dt.UTC)
    async with catalog_app.state.sessionmaker() as session:
        await session.execute(
            update(ContentProduct)
            .where(ContentProduct.tenant_id == tenant_id, ContentProduct.content_id == "v")
            .values(ends_at=ends_at)
        )
        change = await record_change(
            session,
            tenant_id=tenant_id,
            entity="content_product",
            entity_id="v/p",
            op="upsert",
            data={
                "content_id": "v",
                "product_id": "p",
                "placement": "mention",
                "starts_at": None,
                "ends_at": LEGACY_ENDS_AT,
                "created_at": "2026-11-01T12:00:00Z",
                "updated_at": "2026-11-01T12:00:00Z",
            },
        )
        await session.commit()
        return change.seq


# --- the report, end to end -----------------------------------------------------------------


async def test_the_reported_put_is_422_and_every_tenant_keeps_syncing(
    tenants: Callable[[], Tenant],
) -> None:
    shop, other = tenants(), tenants()
    await shop.world()

    response = await shop.put(
        "/v1/contents/v/products/p",
        {"placement": "mention", "ends_at": "0070-09-12T19:30:26Z"},
        expect=422,
    )

    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "ends_at"]
    assert "is before 1970-01-01T00:00:00Z" in error["msg"]
    await other.put("/v1/accounts/b", {"platform": "douyin", "handle": "@other"})
    for tenant in (shop, other):
        assert (await tenant.sync()).status_code == 200


async def test_a_change_fed_before_the_fix_is_skipped_and_recorded_not_a_stall_for_everyone(
    tenants: Callable[[], Tenant],
    catalog_app: FastAPI,
    attribution_app: FastAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    shop, other = tenants(), tenants()
    await shop.world()
    await shop.put("/v1/contents/v/products/p", {"placement": "mention"})
    tenant_id = shop.tenant_id
    bad_seq = await write_legacy_link(catalog_app, tenant_id)
    await other.put("/v1/accounts/b", {"platform": "douyin", "handle": "@other"})
    before = skipped_count("content_product")
    caplog.set_level(logging.WARNING, logger="clipfunnel.catalog_sync")

    response = await other.sync()

    assert response.status_code == 200, response.text
    feed_end = response.json()["catalog_seq"]
    assert feed_end > bad_seq  # the feed moved past the bad change
    assert {a.id for a in await read_model(attribution_app, CatalogAccount)} == {"a", "b"}
    [record] = await skipped(attribution_app)
    assert (record.seq, record.tenant_id, record.entity, record.entity_id, record.op) == (
        bad_seq,
        tenant_id,
        "content_product",
        "v/p",
        "upsert",
    )
    assert "`ends_at`" in record.reason
    assert LEGACY_ENDS_AT in record.reason
    assert json.loads(record.change)["data"]["ends_at"] == LEGACY_ENDS_AT
    assert skipped_count("content_product") == before + 1
    assert any(
        f"catalog change {bad_seq} skipped" in r.getMessage() and "ends_at" in r.getMessage()
        for r in caplog.records
    )
    # The link as first fed stays; the catalog itself now writes the stored year in full.
    [link] = await read_model(attribution_app, CatalogContentProduct)
    assert (link.placement, link.ends_at) == ("mention", None)
    stored = await shop.catalog.get("/v1/contents/v/products/p", headers=shop.headers)
    assert stored.json()["ends_at"] == "0070-09-12T19:30:26Z"

    # Syncing again neither fails nor records the change twice; later changes of the link
    # (fixing it, deleting it) apply as usual.
    assert (await shop.sync()).json()["catalog_seq"] == feed_end
    await shop.put(
        "/v1/contents/v/products/p",
        {"placement": "pinned", "ends_at": "2026-11-02T00:00:00Z"},
        expect=200,
    )
    assert (await shop.sync()).status_code == 200
    [link] = await read_model(attribution_app, CatalogContentProduct)
    assert (link.placement, link.ends_at) == ("pinned", dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    assert (
        await shop.catalog.delete("/v1/contents/v/products/p", headers=shop.headers)
    ).status_code == 204
    assert (await other.sync()).status_code == 200
    assert await read_model(attribution_app, CatalogContentProduct) == []
    assert len(await skipped(attribution_app)) == 1


async def test_the_background_loop_moves_past_a_change_it_cannot_apply(
    tenants: Callable[[], Tenant], catalog_app: FastAPI, attribution_app: FastAPI
) -> None:
    shop = tenants()
    await shop.world()
    await shop.put("/v1/contents/v/products/p", {"placement": "mention"})
    bad_seq = await write_legacy_link(catalog_app, shop.tenant_id)
    await shop.put("/v1/accounts/after", {"platform": "douyin", "handle": "@later"})
    sync: CatalogSync = attribution_app.state.catalog_sync
    waits = Waits(sync, rounds=2)

    with pytest.raises(LoopStopped):
        await sync.run_forever()

    assert waits.seen == [sync.interval_seconds] * 2  # each pull succeeded: no backoff
    assert {a.id for a in await read_model(attribution_app, CatalogAccount)} == {"a", "after"}
    assert [s.seq for s in await skipped(attribution_app)] == [bad_seq]


# --- changes the read model cannot take -----------------------------------------------------


class FakeCatalog:
    """A catalog whose change feed is whatever the test says (or an outage)."""

    def __init__(self) -> None:
        self.changes: list[dict[str, Any]] = []
        self.answer: Callable[[httpx.Request], httpx.Response] | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.answer is not None:
            return self.answer(request)
        after = int(request.url.params["after"])
        fresh = [c for c in self.changes if c["seq"] > after]
        return httpx.Response(
            200, json={"changes": fresh, "next_after": fresh[-1]["seq"] if fresh else after}
        )

    def add(
        self,
        entity: str,
        data: dict[str, Any],
        *,
        tenant: str = "t1",
        override: dict[str, Any] | None = None,
    ) -> int:
        """Feeds an upsert of ``data``; ``override`` replaces fields of the entry itself."""
        seq = len(self.changes) + 1
        change = {"seq": seq, "tenant_id": tenant, "entity": entity, "id": data.get("id", "")}
        self.changes.append(change | {"op": "upsert", "data": data} | (override or {}))
        return seq


def fake_sync(app: FastAPI, catalog: FakeCatalog, clock: Clock | None = None) -> CatalogSync:
    client = httpx.AsyncClient(
        base_url="http://catalog.test", transport=httpx.MockTransport(catalog.handle)
    )
    extra: dict[str, Any] = {} if clock is None else {"clock": clock}
    return CatalogSync(
        sessionmaker=app.state.sessionmaker,
        client=client,
        secret=TEST_SECRET,
        interval_seconds=1.0,
        max_backoff_seconds=8.0,
        **extra,
    )


def account(account_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": account_id, "platform": "douyin", "handle": "@h", "display_name": None} | fields


def tracking_link(code: str) -> dict[str, Any]:
    return {
        "id": code,
        "content_id": "v",
        "product_id": None,
        "ad_id": None,
        "destination_url": "https://shop.test/p",
    }


async def test_values_the_read_model_cannot_hold_are_skipped_each_with_its_reason(
    attribution_app: FastAPI,
) -> None:
    catalog = FakeCatalog()
    catalog.add("account", account("ok-1"))
    reasons = {
        catalog.add("account", account("long", handle="h" * 257)): "`handle` is 257 characters",
        catalog.add("account", account("nul", handle="a\x00b")): "`handle` contains a NUL",
        catalog.add("account", {"id": "none", "platform": "douyin"}): "`handle` is missing",
        catalog.add("product", {"id": "p", "title": "t", "price": "1e20", "currency": "CNY"}): (
            "'1e20' is not an amount"
        ),
        catalog.add(
            "ad_spend", {"ad_id": "ad", "day": "2026-13-01", "amount": "1", "currency": "CNY"}
        ): ("`day` '2026-13-01' is not valid"),
        catalog.add("account", account("odd"), override={"op": "merge"}): "unknown op 'merge'",
        catalog.add(
            "account", account("x"), override={"data": ["not", "an", "object"]}
        ): "`data` must be",
        catalog.add(
            "account", account("y"), override={"tenant_id": None}
        ): "`tenant_id` must be str",
    }
    catalog.add("newer_entity", {"id": "z"})  # an entity this service does not keep: ignored
    last = catalog.add("account", account("ok-2"))

    assert await fake_sync(attribution_app, catalog).pull() == last

    assert {a.id for a in await read_model(attribution_app, CatalogAccount)} == {"ok-1", "ok-2"}
    records = await skipped(attribution_app)
    assert [r.seq for r in records] == sorted(reasons)
    for record in records:
        assert reasons[record.seq] in record.reason, record.reason
        assert json.loads(record.change)["seq"] == record.seq


async def test_a_change_the_database_refuses_is_skipped_and_the_rest_of_its_page_applies(
    attribution_app: FastAPI,
) -> None:
    catalog = FakeCatalog()
    catalog.add("tracking_link", tracking_link("c0de"), tenant="t1")
    catalog.add("account", account("before"), tenant="t2")
    # The same code in another tenant breaks the read model's unique index on codes.
    clash = catalog.add("tracking_link", tracking_link("c0de"), tenant="t2")
    catalog.add("account", account("after"), tenant="t2")

    await fake_sync(attribution_app, catalog).pull()

    [link] = await read_model(attribution_app, CatalogTrackingLink)
    assert (link.tenant_id, link.code) == ("t1", "c0de")
    accounts = await read_model(attribution_app, CatalogAccount)
    assert {a.id for a in accounts} == {"before", "after"}
    [record] = await skipped(attribution_app)
    assert (record.seq, record.tenant_id) == (clash, "t2")
    assert record.reason.startswith("the database refused it")


def test_the_projection_takes_what_the_catalog_feeds() -> None:
    change = parse_change(
        {
            "seq": 7,
            "tenant_id": "t1",
            "entity": "content_product",
            "id": "v/p",
            "op": "upsert",
            "data": {
                "content_id": "v",
                "product_id": "p",
                "placement": "pinned",
                "starts_at": "0070-09-12T19:30:26Z",
                "ends_at": "2024-06-18T20:45:00+08:00",
            },
        }
    )
    row = project(change)
    assert row is not None
    assert row.values is not None
    assert row.key == {"tenant_id": "t1", "content_id": "v", "product_id": "p"}
    assert row.values == {
        "placement": "pinned",
        "starts_at": dt.datetime(70, 9, 12, 19, 30, 26, tzinfo=dt.UTC),
        "ends_at": dt.datetime(2024, 6, 18, 12, 45, tzinfo=dt.UTC),
    }
    deleted = project(
        parse_change(
            {
                "seq": 8,
                "tenant_id": "t1",
                "entity": "ad_spend",
                "id": "ad/2024-06-18",
                "op": "delete",
                "data": {},
            }
        )
    )
    assert deleted is not None
    assert deleted.values is None
    assert deleted.key == {"tenant_id": "t1", "ad_id": "ad", "day": dt.date(2024, 6, 18)}
    with pytest.raises(Unappliable, match="has no timezone offset"):
        project(
            parse_change(
                {
                    **_content_product(),
                    "data": {"placement": "pinned", "ends_at": "2024-06-18T20:45:00"},
                }
            )
        )


def _content_product() -> dict[str, Any]:
    return {"seq": 9, "tenant_id": "t1", "entity": "content_product", "id": "v/p", "op": "upsert"}


# --- the loop: backoff and recovery ---------------------------------------------------------


class LoopStopped(Exception):
    pass


class Waits:
    """Stands in for the loop's sleep: notes each wait, stops the loop after ``rounds``."""

    def __init__(
        self, sync: CatalogSync, rounds: int, between: Callable[[int], None] | None = None
    ):
        self.seen: list[float] = []
        self.rounds = rounds
        self.between = between
        sync.sleep = self

    async def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        if self.between is not None:
            self.between(len(self.seen))
        if len(self.seen) >= self.rounds:
            raise LoopStopped


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def test_failures_back_off_exponentially_up_to_the_limit_then_recover(
    attribution_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = FakeCatalog()
    catalog.add("account", account("a1"))
    catalog.answer = outage
    sync = fake_sync(attribution_app, catalog)

    def recover(waited: int) -> None:
        if waited == 6:
            catalog.answer = None

    waits = Waits(sync, rounds=8, between=recover)
    caplog.set_level(logging.WARNING, logger="clipfunnel.catalog_sync")

    with pytest.raises(LoopStopped):
        await sync.run_forever()

    backoff, after = waits.seen[:6], waits.seen[6:]
    # 1, 2, 4, 8, 8, 8 seconds, each plus up to one interval of jitter, at most 8.
    for wait, base in zip(backoff, [1, 2, 4, 8, 8, 8], strict=True):
        assert base <= wait <= min(base + 1, 8), backoff
    assert after == [1.0, 1.0]  # caught up: back to the interval
    assert [a.id for a in await read_model(attribution_app, CatalogAccount)] == ["a1"]
    unreachable = [r for r in caplog.records if "catalog unreachable" in r.getMessage()]
    assert len(unreachable) == 6


async def test_an_unexpected_failure_is_logged_with_its_traceback_and_retried(
    attribution_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = FakeCatalog()
    catalog.answer = lambda request: httpx.Response(200, text="<html>a login page</html>")
    sync = fake_sync(attribution_app, catalog)
    Waits(sync, rounds=2)
    caplog.set_level(logging.ERROR, logger="clipfunnel.catalog_sync")

    with pytest.raises(LoopStopped):
        await sync.run_forever()

    failures = [r for r in caplog.records if "catalog sync failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info for r in failures)


# --- readiness ------------------------------------------------------------------------------


async def test_readyz_is_503_once_the_sync_has_stopped_advancing_and_200_once_it_does(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: Callable[..., str]
) -> None:
    catalog = FakeCatalog()
    clock = Clock()
    sync = fake_sync(attribution_app, catalog, clock)
    attribution_app.state.catalog_sync = sync
    attribution_app.state.readiness_checks = [sync.stall]
    admin = auth(make_token(new_tenant(), "admin"))
    assert sync.stall_seconds == 16  # two of the longest backoffs
    catalog.answer = lambda request: httpx.Response(200, json={"changes": "nope"})

    failed = await attribution.post("/v1/sync", headers=admin)
    assert failed.status_code == 502
    assert "not one" in failed.json()["detail"]
    assert (await attribution.get("/readyz")).status_code == 200  # not for long enough yet

    clock.now += 17
    not_ready = await attribution.get("/readyz")

    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"].startswith("application/problem+json")
    detail = not_ready.json()["detail"]
    assert "The catalog sync has not advanced for 17 s" in detail
    assert "CatalogFeedError" in detail

    catalog.answer = None
    assert (await attribution.post("/v1/sync", headers=admin)).status_code == 200
    assert (await attribution.get("/readyz")).status_code == 200


async def test_an_unreachable_catalog_does_not_make_attribution_unready(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: Callable[..., str]
) -> None:
    catalog = FakeCatalog()
    catalog.answer = outage
    clock = Clock()
    sync = fake_sync(attribution_app, catalog, clock)
    attribution_app.state.catalog_sync = sync
    attribution_app.state.readiness_checks = [sync.stall]

    response = await attribution.post("/v1/sync", headers=auth(make_token(new_tenant(), "admin")))
    clock.now += 3600

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert (await attribution.get("/readyz")).status_code == 200
    assert sync.update_lag() == 3600  # the lag metric (and its alert) tell the story


async def test_the_app_checks_its_background_sync_for_readiness(
    make_database: DatabaseFactory, var_dir: Path, catalog_app: FastAPI
) -> None:
    settings = attribution_settings(make_database(MIGRATIONS), var_dir, sync_enabled=True)
    app = create_app(
        settings, catalog_transport=httpx.ASGITransport(app=catalog_app), configure_logs=False
    )
    async with app.router.lifespan_context(app):
        assert app.state.readiness_checks == [app.state.catalog_sync.stall]
        # A pull that has finished, whatever the machine's load: the sync has advanced.
        await app.state.catalog_sync.pull()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            assert (await client.get("/readyz")).status_code == 200
