"""Limits: body size on every route with a body, page size on every list, report range,
and the time bound of expensive queries.

The body, page and range limits are HTTP-layer checks and run on SQLite; the query time
bound talks to the database and runs on both backends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import REGISTRY
from sqlalchemy import text

from shared.app import SessionDep, build_app
from shared.auth import mint_token
from shared.db import make_engine
from shared.errors import PROBLEM_JSON
from shared.pagination import MAX_LIMIT
from shared.timeouts import QueryTimeout, bounded
from tests.conftest import TEST_SECRET, DatabaseFactory, Templates, auth, client_for, new_tenant
from tests.ops_http.apps import Stack, sqlite_stack

MIB = 1024 * 1024


@pytest.fixture
async def stack(templates: Templates, tmp_path: Path) -> AsyncIterator[Stack]:
    async with sqlite_stack(templates, tmp_path) as s:
        yield s


def admin() -> dict[str, str]:
    return auth(mint_token(TEST_SECRET, new_tenant(), ["admin"]))


def concrete(path: str) -> str:
    """A path template with every parameter filled (a day where the template wants one)."""
    path = path.replace("{day}", "2026-01-01")
    return re.sub(r"\{[^}]+\}", "x1", path)


def operations(app: FastAPI, predicate: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if predicate(path, operation)
    ]


def counted(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


# --- body size -----------------------------------------------------------------------------


async def test_every_route_with_a_body_refuses_more_than_1_mib(stack: Stack) -> None:
    big = b'{"padding": "' + b"x" * MIB + b'"}'
    headers = {**admin(), "Content-Type": "application/json"}
    tried = []
    for name, client, app in (
        ("catalog", stack.catalog, stack.catalog_app),
        ("attribution", stack.attribution, stack.attribution_app),
    ):
        for method, path, _ in operations(app, lambda p, op: "requestBody" in op):
            before = counted(method, path, "413")
            response = await client.request(method, concrete(path), content=big, headers=headers)
            assert response.status_code == 413, (name, method, path, response.text[:200])
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["status"] == 413
            # Answered inside routing: counted under the route template.
            assert counted(method, path, "413") == before + 1, (method, path)
            tried.append((method, path))
    assert len(tried) >= 12


async def test_the_limit_counts_bytes_read_without_content_length(stack: Stack) -> None:
    payload = b'{"title": "' + b"y" * (MIB + 10) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    for client, method, path in (
        (stack.catalog, "PUT", "/v1/products/p1"),
        (stack.attribution, "PUT", "/v1/settings"),
        (stack.attribution, "POST", "/v1/orders"),
    ):
        response = await client.request(method, path, content=chunks(), headers=admin())
        assert response.status_code == 413, (path, response.text[:200])
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["type"].endswith("/payload-too-large")


async def test_a_declared_length_over_the_limit_is_refused_before_reading(stack: Stack) -> None:
    headers = {**admin(), "Content-Length": str(2 * MIB), "Content-Type": "application/json"}
    response = await stack.catalog.put("/v1/accounts/a1", content=b"{}", headers=headers)
    assert response.status_code == 413
    assert "2097152 bytes" in response.json()["detail"]


async def test_a_body_at_the_limit_is_read(templates: Templates, tmp_path: Path) -> None:
    small = {"max_body_bytes": 200}
    async with sqlite_stack(templates, tmp_path, catalog=small) as stack:
        body = {"platform": "douyin", "handle": "@a", "display_name": ""}
        raw = httpx.Request("PUT", "/", json=body).content
        body["display_name"] = "d" * (200 - len(raw))
        at_limit = httpx.Request("PUT", "/", json=body).content
        assert len(at_limit) == 200
        headers = {**admin(), "Content-Type": "application/json"}
        response = await stack.catalog.put("/v1/accounts/a1", content=at_limit, headers=headers)
        assert response.status_code == 201, response.text
        response = await stack.catalog.put(
            "/v1/accounts/a1", content=at_limit + b" ", headers=headers
        )
        assert response.status_code == 413


# --- page size -----------------------------------------------------------------------------


def is_page(path: str, operation: dict[str, Any]) -> bool:
    names = {p["name"] for p in operation.get("parameters", [])}
    return "limit" in names and "cursor" in names


async def test_every_list_caps_its_page_at_500(stack: Stack) -> None:
    h = admin()
    # Parents for the nested lists.
    for path, body in (
        ("/v1/accounts/x1", {"platform": "douyin", "handle": "@x"}),
        ("/v1/contents/x1", {"kind": "video", "account_id": "x1", "title": "t"}),
        ("/v1/campaigns/x1", {"name": "c"}),
        ("/v1/ads/x1", {"campaign_id": "x1", "content_id": "x1", "format": "native"}),
    ):
        assert (await stack.catalog.put(path, json=body, headers=h)).status_code == 201
    shop = {"platform": "shopify", "shop": "x1.myshopify.com", "secret": "s"}
    assert (
        await stack.attribution.put("/v1/integrations/x1", json=shop, headers=h)
    ).status_code == 201
    lists = []
    for client, app in (
        (stack.catalog, stack.catalog_app),
        (stack.attribution, stack.attribution_app),
    ):
        for method, path, operation in operations(app, is_page):
            limit = next(p for p in operation["parameters"] if p["name"] == "limit")
            assert limit["schema"].get("maximum") == MAX_LIMIT, path
            url = concrete(path)
            for value, expected in (("500", 200), ("501", 422), ("0", 422), ("x", 422)):
                response = await client.request(method, url, params={"limit": value}, headers=h)
                assert response.status_code == expected, (path, value, response.text[:200])
                if expected == 422:
                    assert response.headers["content-type"] == PROBLEM_JSON
            lists.append(path)
    assert len(lists) >= 9
    assert "/v1/events/rejected" in lists


async def test_other_limit_parameters_are_documented(stack: Stack) -> None:
    """The change feed is not a page (`{changes, next_after}`): its own cap, 5,000."""
    for app in (stack.catalog_app, stack.attribution_app):
        for _, path, operation in operations(app, lambda p, op: not is_page(p, op)):
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "limit":
                    assert path == "/v1/changes"
                    assert parameter["schema"]["maximum"] == 5000


# --- report range --------------------------------------------------------------------------


async def test_reports_and_funnels_refuse_ranges_over_max_report_days(
    templates: Templates, tmp_path: Path
) -> None:
    async with sqlite_stack(templates, tmp_path, attribution={"max_report_days": 10}) as stack:
        paths = set(stack.attribution_app.openapi()["paths"])
        start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        h = admin()
        tried = 0
        for days, expected in ((10, 200), (11, 422)):
            window = {
                "from": start.isoformat(),
                "to": (start + dt.timedelta(days=days)).isoformat(),
            }
            requests: list[tuple[str, str, dict[str, Any]]] = [
                ("GET", f"/v1/reports/{name}", {"params": window}) for name in ("ads", "contents")
            ]
            requests.append(
                ("GET", "/v1/reports/timeseries", {"params": {**window, "metric": "views"}})
            )
            requests.append(
                (
                    "POST",
                    "/v1/funnels",
                    {"json": {"steps": [{"type": "view"}, {"type": "click"}], **window}},
                )
            )
            for method, path, kwargs in requests:
                if path not in paths:
                    continue  # not built yet
                response = await stack.attribution.request(method, path, headers=h, **kwargs)
                assert response.status_code == expected, (path, days, response.text[:300])
                if expected == 422:
                    assert response.headers["content-type"] == PROBLEM_JSON
                    assert "10 days" in response.json()["detail"], response.text
                tried += 1
        assert tried >= 2


# --- time bound of expensive queries -------------------------------------------------------

SLOW_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
    "SELECT count(*) FROM c"
)
SLOW_POSTGRES = "SELECT pg_sleep(20)"


async def test_bounded_passes_results_and_exceptions_through() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        raise KeyError("x")

    assert await bounded(answer(), 1.0) == 42
    assert await bounded(answer(), None) == 42
    assert await bounded(answer(), 0) == 42
    with pytest.raises(KeyError):
        await bounded(fail(), 1.0)


async def test_bounded_raises_a_503_with_retry_after() -> None:
    # Without the bound the sleep ends after a minute, and the test fails: no QueryTimeout.
    with pytest.raises(QueryTimeout) as caught:
        await bounded(asyncio.sleep(60), 0.05)
    error = caught.value
    assert error.status == 503
    assert error.headers["Retry-After"] == "1"
    assert "narrow the range" in error.detail


async def test_a_timed_out_query_stops_in_the_database(make_database: DatabaseFactory) -> None:
    from services.attribution.app import MIGRATIONS

    engine = make_engine(make_database(MIGRATIONS))
    try:
        dialect = engine.dialect.name
        slow = SLOW_POSTGRES if dialect == "postgresql" else SLOW_SQLITE
        async with engine.connect() as conn:
            pid = (
                (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
                if dialect == "postgresql"
                else None
            )
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(engine) as session:
            with pytest.raises(QueryTimeout):
                await bounded(session.execute(text(slow)), 0.3, session=session)
        # The pool hands out a working connection (the abandoned one was discarded).
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            if dialect == "postgresql":
                running = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE query = :q AND state = 'active'"
                        ),
                        {"q": SLOW_POSTGRES},
                    )
                ).scalar()
                assert running == 0, "the timed-out statement still runs on the server"
        del pid
    finally:
        await engine.dispose()


async def test_a_statement_that_begins_after_the_deadline_is_stopped_too(
    make_database: DatabaseFactory,
) -> None:
    """On a busy machine the slow statement may reach SQLite only after the deadline's
    interrupts have run out; the rollback then waits behind it, so it must be interrupted
    too (before, the request hung until the statement ended: a minute here)."""
    from services.attribution.app import MIGRATIONS

    engine = make_engine(make_database(MIGRATIONS))
    if engine.dialect.name != "sqlite":
        await engine.dispose()
        pytest.skip("PostgreSQL stops late statements with its statement_timeout backstop")
    try:
        from sqlalchemy.ext.asyncio import AsyncSession

        async with AsyncSession(engine) as session:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            # aiosqlite runs a connection's calls one by one in its thread: a second of work
            # queued first holds the statement back past the deadline and every interrupt
            # (what a loaded machine does).
            busy = asyncio.ensure_future(driver._execute(time.sleep, 1.0))

            async def late() -> None:
                await session.execute(text(SLOW_SQLITE))

            started = time.monotonic()
            with pytest.raises(QueryTimeout):
                await bounded(late(), 0.1, session=session)
            assert time.monotonic() - started < 20
            await busy
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_slow_report_is_answered_503_problem_json(
    make_database: DatabaseFactory, var_dir: Path
) -> None:
    """The whole chain: a handler using ``bounded`` → 503 problem+json with Retry-After, and
    the next request on the same app is served."""
    from services.attribution.app import MIGRATIONS
    from services.attribution.models import RevokedToken
    from tests.conftest import attribution_settings

    settings = attribution_settings(make_database(MIGRATIONS), var_dir, report_timeout_seconds=0.3)
    router = APIRouter()

    @router.get("/v1/slow")
    async def slow(request: Request, session: SessionDep) -> dict[str, int]:
        dialect = session.bind.dialect.name
        query = text(SLOW_POSTGRES if dialect == "postgresql" else SLOW_SQLITE)
        await bounded(
            session.execute(query),
            request.app.state.settings.report_timeout_seconds,
            session=session,
        )
        return {"never": 1}

    @router.get("/v1/fast")
    async def fast(session: SessionDep) -> dict[str, int]:
        return {"one": int((await session.execute(text("SELECT 1"))).scalar() or 0)}

    app = build_app(
        title="t",
        description="t",
        settings=settings,
        migrations=MIGRATIONS,
        revoked_tokens=RevokedToken,
        routers=[router],
        configure_logs=False,
    )
    async with app.router.lifespan_context(app), client_for(app, "http://t") as client:
        response = await client.get("/v1/slow")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"].endswith("/query-timeout")
        assert "narrow the range" in response.json()["detail"]
        response = await client.get("/v1/fast")
        assert response.json() == {"one": 1}
