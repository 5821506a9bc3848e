"""The reports' HTTP surface: auth, validation (422 saying what is allowed), defaults, the
tenant's settings, and the pure metric math."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.analytics.wiring import stop_replication
from services.attribution.reports import metrics, service
from services.attribution.reports.metrics import Totals
from shared.currencies import minor_units
from tests.attribution import report_reference as ref
from tests.conftest import TokenFactory, auth

CNY, JPY, KWD = minor_units("CNY"), minor_units("JPY"), minor_units("KWD")  # 2, 0, 3 places

PATHS = ("/v1/reports/ads", "/v1/reports/contents", "/v1/reports/timeseries?metric=clicks")
PROBLEM_JSON = "application/problem+json"
RANGE = {"from": "2026-10-11T00:00:00+08:00", "to": "2026-10-15T00:00:00+08:00"}


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with ref.fixed_clock():
        yield


async def test_reports_need_a_token_with_reports_read(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    for path in PATHS:
        missing = await attribution.get(path)
        assert missing.status_code == 401
        assert missing.headers["content-type"] == PROBLEM_JSON
        assert missing.headers["www-authenticate"].startswith("Bearer")
        bad = await attribution.get(path, headers=auth("cf1.not.valid"))
        assert bad.status_code == 401
        for scopes in (("events:write",), ("orders:write", "catalog:read")):
            forbidden = await attribution.get(path, headers=auth(make_token(tenant, *scopes)))
            assert forbidden.status_code == 403
            assert "reports:read" in forbidden.json()["detail"]
        ok = await attribution.get(path, headers=auth(make_token(tenant, "reports:read")))
        assert ok.status_code == 200, ok.text


INVALID: list[tuple[str, dict[str, str], str, str]] = [
    ("/v1/reports/ads", {"model": "u_shaped"}, "model", "position_based"),
    ("/v1/reports/ads", {"format": "xml"}, "format", "json, csv"),
    ("/v1/reports/ads", {"from": "2026-10-11T00:00:00"}, "from", "offset"),
    ("/v1/reports/ads", {"to": "yesterday"}, "to", "ISO-8601"),
    ("/v1/reports/ads", {"from": "0001-01-01T00:00:00+14:00"}, "from", "year from 1900"),
    ("/v1/reports/ads", {"include_inactive": "maybe"}, "include_inactive", "true or false"),
    ("/v1/reports/ads", {"campaign_id": "bad id!"}, "campaign_id", "letters, digits"),
    ("/v1/reports/ads", {"table": "funnel"}, "table", "by_format"),
    (
        "/v1/reports/ads",
        {"from": "2026-10-15T00:00:00Z", "to": "2026-10-15T00:00:00Z"},
        "from",
        "before",
    ),
    (
        "/v1/reports/contents",
        {"from": "2025-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        "to",
        "at most 400 days",
    ),
    ("/v1/reports/contents", {"kind": "podcast"}, "kind", "video, live"),
    ("/v1/reports/contents", {"platform": "myspace"}, "platform", "douyin"),
    ("/v1/reports/contents", {"account_id": "x" * 129}, "account_id", "1–128"),
    ("/v1/reports/timeseries", {}, "metric", "impressions, views, clicks, orders, gmv"),
    ("/v1/reports/timeseries", {"metric": "revenue"}, "metric", "gmv"),
    ("/v1/reports/timeseries", {"metric": "gmv", "interval": "week"}, "interval", "hour, day"),
    ("/v1/reports/timeseries", {"metric": "gmv", "ad_id": "a/b"}, "ad_id", "letters"),
]


async def test_invalid_queries_are_422_saying_what_is_allowed(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    token = make_token(tenant, "reports:read")
    for path, params, field, hint in INVALID:
        response = await attribution.get(path, params=params, headers=auth(token))
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        body = response.json()
        assert body["status"] == 422
        assert body["type"].endswith("validation-error")
        assert hint in body["detail"], (params, body)
        assert [error["loc"] for error in body["errors"]] == [["query", field]], params
        assert hint in body["errors"][0]["msg"], params


async def test_every_problem_is_reported_at_once(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    response = await attribution.get(
        "/v1/reports/timeseries",
        params={"metric": "x", "interval": "y", "model": "z", "from": "nope", "format": "pdf"},
        headers=auth(make_token(tenant, "reports:read")),
    )
    assert response.status_code == 422
    fields = {error["loc"][1] for error in response.json()["errors"]}
    assert fields == {"metric", "interval", "model", "from", "format"}


async def get(client: httpx.AsyncClient, token: str, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_defaults_are_the_last_30_days_the_tenant_model_and_json(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    with ref.fixed_clock(tick=False):  # the server's "now" is NOW exactly
        token = make_token(tenant, "admin")
        body = await get(attribution, token, "/v1/reports/ads")
    assert body["to"] == "2026-12-01T00:00:00Z"
    assert body["from"] == "2026-11-01T00:00:00Z"
    assert body["model"] == "last_touch"
    assert body["currency"] is None
    assert body["rows"] == []
    assert body["warnings"] == []
    # Only `to` given: 30 days before it.
    only_to = await get(attribution, token, "/v1/reports/contents", to="2026-10-15T00:00:00Z")
    assert only_to["from"] == "2026-09-15T00:00:00Z"
    # The tenant's default model.
    response = await attribution.put(
        "/v1/settings", json={"default_model": "time_decay"}, headers=auth(token)
    )
    assert response.status_code == 200
    assert (await get(attribution, token, "/v1/reports/ads", **RANGE))["model"] == "time_decay"
    series = await get(attribution, token, "/v1/reports/timeseries", metric="orders", **RANGE)
    assert series["model"] == "time_decay"
    assert series["interval"] == "day"
    # 16:00Z on the 10th to 16:00Z on the 14th overlaps five UTC days (the tenant's zone).
    assert [point["start"][:10] for point in series["points"]] == [
        "2026-10-10",
        "2026-10-11",
        "2026-10-12",
        "2026-10-13",
        "2026-10-14",
    ]


async def test_an_unencoded_plus_in_the_offset_is_understood(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    token = make_token(tenant, "reports:read")
    response = await attribution.get(
        "/v1/reports/ads?from=2026-10-11T00:00:00+08:00&to=2026-10-12T00:00:00+08:00",
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    assert response.json()["from"] == "2026-10-10T16:00:00Z"


async def test_a_tenant_without_a_currency_reports_spend_in_its_only_currency(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    admin_token: str,
) -> None:
    puts = [
        ("/v1/accounts/a1", {"platform": "kuaishou", "handle": "a1"}),
        ("/v1/contents/v1", {"kind": "video", "account_id": "a1", "title": "v"}),
        ("/v1/campaigns/c1", {"name": "c"}),
        ("/v1/ads/ad1", {"campaign_id": "c1", "content_id": "v1", "format": "banner"}),
        ("/v1/ads/ad1/spend/2026-10-12", {"amount": "12.345", "currency": "EUR"}),
    ]
    for path, payload in puts:
        response = await catalog.put(path, json=payload, headers=auth(admin_token))
        assert response.status_code in (200, 201), response.text
    assert (await attribution.post("/v1/sync", headers=auth(admin_token))).status_code == 200
    body = await get(attribution, admin_token, "/v1/reports/ads", **RANGE)
    assert body["currency"] == "EUR"
    assert body["rows"][0]["spend"] == "12.34"  # half-even to cents; the ratios use 12.345
    assert body["rows"][0]["roas"] == 0.0
    assert len(body["warnings"]) == 1
    assert "no currency yet" in body["warnings"][0]
    # Once the tenant has a currency, the EUR spend is left out and named.
    response = await attribution.put(
        "/v1/settings", json={"currency": "JPY"}, headers=auth(admin_token)
    )
    assert response.status_code == 200
    body = await get(attribution, admin_token, "/v1/reports/ads", **RANGE)
    assert body["currency"] == "JPY"
    assert body["rows"][0]["spend"] == "0"  # JPY has no minor unit
    assert body["rows"][0]["gmv"] == "0"
    assert body["rows"][0]["roas"] is None
    assert body["warnings"] == [
        "Spend in EUR is left out of this report, which is in JPY: 12.34 EUR over 1 ad-day(s) "
        "on ad1."
    ]
    by_format = {row["format"]: row for row in body["by_format"]}
    assert by_format["banner"]["spend"] == "0"


# --- metric math ----------------------------------------------------------------------------


def test_ratios_are_null_when_the_denominator_is_zero() -> None:
    empty = Totals()
    assert metrics.ctr(empty) is None
    assert metrics.completion_rate(empty) is None
    assert metrics.engagement_rate(empty) is None
    assert metrics.cvr(empty) is None
    assert metrics.avg_watch_seconds(empty) is None
    assert metrics.gpm(empty, CNY) is None
    assert metrics.cpm(empty, CNY) is None
    assert metrics.cpc(empty, CNY) is None
    assert metrics.cpa(empty, CNY) is None
    assert metrics.roas(empty) is None


def test_money_ratios_round_half_even_to_the_minor_unit() -> None:
    t = Totals(
        impressions=3,
        views=7,
        clicks=8,
        likes=1,
        comments=2,
        shares=4,
        completions=2,
        orders=1 / 3 + 1 / 3 + 1 / 3 + 1e-12,
        gmv=Decimal("100.00"),
        spend=Decimal("0.125"),
    )
    assert metrics.ctr(t) == 8 / 3  # more clicks than impressions is possible and shown
    assert metrics.engagement_rate(t) == 1.0
    assert metrics.rounded_orders(t.orders) == 1.0
    assert metrics.cvr(t) == 1 / 8
    assert metrics.cpc(t, CNY) == Decimal("0.02")  # 0.015625 → 0.02
    assert metrics.cpa(t, CNY) == Decimal("0.12")  # 0.125 → half-even 0.12
    assert metrics.cpm(t, CNY) == Decimal("41.67")
    assert metrics.cpm(t, JPY) == Decimal("42")
    assert metrics.cpm(t, KWD) == Decimal("41.667")
    assert metrics.gpm(t, CNY) == Decimal("14285.71")
    assert metrics.roas(t) == 800.0
    assert metrics.money(Decimal("-0.001"), CNY) == Decimal("0.00")
    assert metrics.money_text(metrics.money(Decimal("-0.001"), CNY)) == "0.00"
    assert metrics.money_text(metrics.money(Decimal("1500"), JPY)) == "1500"


SLOW = {
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
    "SELECT count(*) FROM c",
    "postgresql": "SELECT pg_sleep(20)",
}


async def test_a_report_over_its_time_bound_is_503_and_the_next_one_works(
    attribution_app: FastAPI,
    attribution: httpx.AsyncClient,
    tenant: str,
    make_token: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = make_token(tenant, "reports:read")
    queries = [
        ("/v1/reports/ads", RANGE),
        ("/v1/reports/contents", RANGE),
        ("/v1/reports/timeseries", {**RANGE, "metric": "gmv", "interval": "hour"}),
    ]

    stopped: list[str] = []
    # The analytic store's background copies share the loop and the database connections'
    # pool with the requests: this test times the reports' bound alone.
    await stop_replication(attribution_app.state.analytics_task)

    async def slow(session: AsyncSession, *args: Any, **kwargs: Any) -> None:
        try:
            await session.execute(text(SLOW[session.get_bind().dialect.name]))
        except BaseException as exc:  # cancelled, or the statement interrupted
            stopped.append(type(exc).__name__)
            raise

    with monkeypatch.context() as patch:
        patch.setattr(attribution_app.state.settings, "report_timeout_seconds", 0.2)
        for name in ("ads_report", "contents_report", "timeseries"):
            patch.setattr(service, name, slow)
        for path, params in queries:
            # Only a guard against hanging if the bound failed; the answer is what is checked.
            async with asyncio.timeout(60):
                response = await attribution.get(path, params=params, headers=auth(token))
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.headers["retry-after"] == "1"
    assert len(stopped) == len(queries), stopped  # each statement was stopped, not left running
    for path, params in queries:
        response = await attribution.get(path, params=params, headers=auth(token))
        assert response.status_code == 200, response.text
