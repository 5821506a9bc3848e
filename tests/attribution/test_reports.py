"""Reports against an independent reference, on a seeded data set posted through the APIs.

Each test runs on SQLite and PostgreSQL (the ``attribution`` fixture). The reference
(``report_reference``) recomputes every figure from the raw events, the credits the API gives
per order and model, and the spend put in the catalog.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from services.attribution.reports.schemas import (
    AD_COLUMNS,
    CONTENT_COLUMNS,
    FORMAT_COLUMNS,
    AdRow,
    ContentRow,
    FormatRow,
)
from tests.attribution import report_reference as ref
from tests.conftest import TokenFactory, auth

RANGE = {"from": ref.RANGE_START.isoformat(), "to": ref.RANGE_END.isoformat()}
# Not aligned to local midnight: spend days are those whose midnight falls inside.
ODD_START = dt.datetime(2026, 10, 11, 6, 30, tzinfo=ref.SHANGHAI)
ODD_END = dt.datetime(2026, 10, 14, 18, 0, tzinfo=ref.SHANGHAI)
ODD_RANGE = {"from": ODD_START.isoformat(), "to": ODD_END.isoformat()}
ORDERS_TOLERANCE = 1.01e-6  # orders are rounded to 6 places on both sides


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with ref.fixed_clock():
        yield


def assert_same_rows(got: list[dict[str, Any]], expected: list[dict[str, Any]], key: str) -> None:
    assert [row[key] for row in got] == [row[key] for row in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine) == list(theirs), mine[key]
        for column, value in theirs.items():
            actual = mine[column]
            where = f"{mine[key]}.{column}: got {actual!r}, expected {value!r}"
            if isinstance(value, float) and actual is not None:
                tolerance = ORDERS_TOLERANCE if column in ("orders", "cvr") else 1e-9
                assert actual == pytest.approx(value, rel=1e-9, abs=tolerance), where
            else:
                assert actual == value, where


async def get_json(
    client: httpx.AsyncClient, token: str, path: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def test_row_schemas_match_the_csv_columns() -> None:
    assert set(AdRow.model_fields) == set(AD_COLUMNS)
    assert set(FormatRow.model_fields) == set(FORMAT_COLUMNS)
    assert set(ContentRow.model_fields) == set(CONTENT_COLUMNS)


async def check_ads_and_contents_match_the_reference_under_every_model(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    for model in ref.MODELS:
        ads = await get_json(attribution, token, "/v1/reports/ads", model=model, **RANGE)
        expected = ref.ads_report(ds, model, ref.RANGE_START, ref.RANGE_END)
        assert ads["currency"] == "CNY"
        assert ads["model"] == model
        assert ads["from"] == "2026-10-10T16:00:00Z"
        assert ads["to"] == "2026-10-14T16:00:00Z"
        assert_same_rows(ads["rows"], expected["rows"], "ad_id")
        assert_same_rows(ads["by_format"], expected["by_format"], "format")

        contents = await get_json(attribution, token, "/v1/reports/contents", model=model, **RANGE)
        assert contents["currency"] == "CNY"
        assert_same_rows(
            contents["rows"],
            ref.contents_report(ds, model, ref.RANGE_START, ref.RANGE_END),
            "content_id",
        )
    # The data set really exercises what it is meant to.
    last = await get_json(attribution, token, "/v1/reports/ads", **RANGE)
    linear = await get_json(attribution, token, "/v1/reports/ads", model="linear", **RANGE)
    assert any(Decimal(row["gmv"]) > 0 for row in last["rows"])
    assert any(row["orders"] != int(row["orders"]) for row in linear["rows"])
    assert [row["format"] for row in last["by_format"]][:4] == list(ref.FORMATS)


async def check_live_rooms_split_direct_and_indirect_gmv(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    body = await get_json(attribution, token, "/v1/reports/contents", model="last_touch", **RANGE)
    live = next(row for row in body["rows"] if row["content_id"] == "live1")
    # Paid at the room's start, middle and end (inclusive) are direct; later is indirect.
    assert Decimal(live["direct_gmv"]) >= Decimal("33.33") + Decimal("39.98") + Decimal("0.05")
    assert Decimal(live["indirect_gmv"]) >= Decimal("23.31") + Decimal("120.00")
    assert Decimal(live["direct_gmv"]) + Decimal(live["indirect_gmv"]) == Decimal(live["gmv"])
    for row in body["rows"]:
        if row["kind"] == "video":
            assert row["direct_gmv"] == "0.00"
            assert row["indirect_gmv"] == row["gmv"]


async def check_ranges_filters_and_inactive_rows_match_the_reference(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    for model in ("last_touch", "linear"):
        ads = await get_json(attribution, token, "/v1/reports/ads", model=model, **ODD_RANGE)
        expected = ref.ads_report(ds, model, ODD_START, ODD_END)
        assert_same_rows(ads["rows"], expected["rows"], "ad_id")
        assert_same_rows(ads["by_format"], expected["by_format"], "format")
        contents = await get_json(
            attribution, token, "/v1/reports/contents", model=model, **ODD_RANGE
        )
        assert_same_rows(
            contents["rows"], ref.contents_report(ds, model, ODD_START, ODD_END), "content_id"
        )

    model = "position_based"
    inactive = await get_json(
        attribution, token, "/v1/reports/ads", model=model, include_inactive="true", **RANGE
    )
    expected = ref.ads_report(ds, model, ref.RANGE_START, ref.RANGE_END, include_inactive=True)
    assert_same_rows(inactive["rows"], expected["rows"], "ad_id")
    idle = next(row for row in inactive["rows"] if row["ad_id"] == "ad-idle")
    assert idle["impressions"] == 0
    assert idle["gmv"] == "0.00"
    assert idle["ctr"] is None
    active = await get_json(attribution, token, "/v1/reports/ads", model=model, **RANGE)
    assert "ad-idle" not in {row["ad_id"] for row in active["rows"]}

    campaign = await get_json(
        attribution, token, "/v1/reports/ads", model=model, campaign_id="camp-b", **RANGE
    )
    expected = ref.ads_report(ds, model, ref.RANGE_START, ref.RANGE_END, campaign_id="camp-b")
    assert_same_rows(campaign["rows"], expected["rows"], "ad_id")
    assert_same_rows(campaign["by_format"], expected["by_format"], "format")
    assert {row["campaign_id"] for row in campaign["rows"]} == {"camp-b"}

    contents_inactive = await get_json(
        attribution, token, "/v1/reports/contents", model=model, include_inactive="true", **RANGE
    )
    assert_same_rows(
        contents_inactive["rows"],
        ref.contents_report(ds, model, ref.RANGE_START, ref.RANGE_END, include_inactive=True),
        "content_id",
    )
    assert {"v-idle", "live-idle"} <= {row["content_id"] for row in contents_inactive["rows"]}
    filter_sets: list[dict[str, Any]] = [
        {"kind": "live"},
        {"kind": "video"},
        {"platform": "tiktok"},
        {"platform": "douyin", "kind": "video"},
        {"account_id": "acc-tt"},
        {"platform": "youtube"},
    ]
    for filters in filter_sets:
        body = await get_json(
            attribution, token, "/v1/reports/contents", model=model, **filters, **RANGE
        )
        expected_rows = ref.contents_report(ds, model, ref.RANGE_START, ref.RANGE_END, **filters)
        assert_same_rows(body["rows"], expected_rows, "content_id")
    youtube = await get_json(
        attribution, token, "/v1/reports/contents", platform="youtube", **RANGE
    )
    assert youtube["rows"] == []


async def check_division_by_zero_is_null_and_money_is_exact(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    ads = await get_json(attribution, token, "/v1/reports/ads", **RANGE)
    by_id = {row["ad_id"]: row for row in ads["rows"]}
    spend_only = by_id["ad-spend-only"]  # spend, no events, no orders
    assert spend_only["spend"] == "77.70"
    assert spend_only["impressions"] == spend_only["clicks"] == 0
    for column in ("cpm", "cpc", "cpa", "ctr", "completion_rate", "cvr"):
        assert spend_only[column] is None, column
    assert spend_only["roas"] == 0.0
    ghost = by_id["ad-ghost"]  # events, no spend
    assert ghost["spend"] == "0.00"
    assert ghost["roas"] is None
    assert ghost["clicks"] == 1
    assert ghost["cpc"] == "0.00"
    assert ghost["campaign_id"] is None
    assert ghost["format"] is None
    assert any("ad-ghost" in warning for warning in ads["warnings"])
    assert [row["format"] for row in ads["by_format"]] == [*ref.FORMATS, None]
    for row in ads["rows"]:
        for column in ("gmv", "spend", "cpm", "cpc", "cpa"):
            value = row[column]
            assert value is None or (isinstance(value, str) and len(value.split(".")[1]) == 2)

    contents = await get_json(attribution, token, "/v1/reports/contents", **RANGE)
    imp_only = next(row for row in contents["rows"] if row["content_id"] == "v-imp")
    assert imp_only["impressions"] == 3
    assert imp_only["views"] == 0
    for column in ("completion_rate", "engagement_rate", "gpm", "avg_watch_seconds"):
        assert imp_only[column] is None, column
    assert imp_only["ctr"] == 0.0
    assert imp_only["kind"] is None  # not in the catalog: a warning names it
    assert any("v-imp" in warning for warning in contents["warnings"])


async def check_spend_in_another_currency_is_left_out_and_named(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    expected = ref.ads_report(ds, "last_touch", ref.RANGE_START, ref.RANGE_END)
    assert set(expected["other"]) == {"USD"}
    body = await get_json(attribution, token, "/v1/reports/ads", **RANGE)
    usd = [warning for warning in body["warnings"] if "USD" in warning]
    assert len(usd) == 1
    assert f"{expected['other']['USD']:.2f} USD" in usd[0]
    assert "ad-banner-1" in usd[0]
    # A range without that day has no such warning.
    later = await get_json(
        attribution,
        token,
        "/v1/reports/ads",
        **{"from": "2026-10-14T00:00:00+08:00", "to": "2026-10-16T00:00:00+08:00"},
    )
    assert not any("USD" in warning for warning in later["warnings"])


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def as_json_value(text: str, example: Any) -> Any:
    if text == "":
        return None
    if isinstance(example, bool):  # pragma: no cover - reports have no booleans
        raise AssertionError
    if isinstance(example, int):
        return int(text)
    if isinstance(example, float):
        return float(text)
    return text


def csv_equals_json(text: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    table = parse_csv(text)
    assert tuple(table[0]) == columns
    assert len(table) == len(rows) + 1
    for line, row in zip(table[1:], rows, strict=True):
        assert list(row) == list(columns)
        for cell, column in zip(line, columns, strict=True):
            assert as_json_value(cell, row[column]) == row[column], (column, cell, row)


async def check_csv_is_the_json_rows(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    headers = auth(token)
    params = {"model": "linear", "include_inactive": "true", **RANGE}
    body = await get_json(attribution, token, "/v1/reports/ads", **params)

    response = await attribution.get(
        "/v1/reports/ads", params={**params, "format": "csv"}, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    assert disposition.endswith('.csv"')
    assert response.headers["x-report-currency"] == "CNY"
    assert "USD" in response.headers["x-report-warnings"]
    csv_equals_json(response.text, body["rows"], AD_COLUMNS)

    by_format = await attribution.get(
        "/v1/reports/ads", params={**params, "format": "csv", "table": "by_format"}, headers=headers
    )
    csv_equals_json(by_format.text, body["by_format"], FORMAT_COLUMNS)

    # Accept: text/csv picks CSV when no format is given; format=json wins over it.
    accepted = await attribution.get(
        "/v1/reports/contents", params=params, headers={**headers, "Accept": "text/csv"}
    )
    assert accepted.headers["content-type"] == "text/csv; charset=utf-8"
    contents = await get_json(attribution, token, "/v1/reports/contents", **params)
    csv_equals_json(accepted.text, contents["rows"], CONTENT_COLUMNS)
    explicit = await attribution.get(
        "/v1/reports/contents",
        params={**params, "format": "json"},
        headers={**headers, "Accept": "text/csv"},
    )
    assert explicit.headers["content-type"].startswith("application/json")

    for metric in ("gmv", "orders", "clicks"):
        series = await get_json(
            attribution, token, "/v1/reports/timeseries", metric=metric, **params
        )
        text = await attribution.get(
            "/v1/reports/timeseries",
            params={**params, "metric": metric, "format": "csv"},
            headers=headers,
        )
        assert text.status_code == 200
        csv_equals_json(text.text, series["points"], ("start", "value"))


async def check_timeseries_matches_the_reference(
    attribution: httpx.AsyncClient, ds: ref.DataSet, token: str
) -> None:
    cases: list[tuple[str, str, str, dict[str, str]]] = [
        (metric, "day", model, {}) for model in ref.MODELS for metric in ("orders", "gmv")
    ]
    cases += [
        ("impressions", "day", "last_touch", {}),
        ("views", "hour", "last_touch", {}),
        ("clicks", "hour", "last_touch", {}),
        ("gmv", "hour", "time_decay", {}),
        ("orders", "hour", "linear", {}),
        ("impressions", "hour", "last_touch", {"content_id": "v1"}),
        ("clicks", "day", "last_touch", {"ad_id": "ad-native-1"}),
        ("gmv", "day", "first_touch", {"content_id": "live1"}),
        ("orders", "day", "linear", {"ad_id": "ad-overlay-1", "content_id": "live1"}),
    ]
    for start, end in ((ref.RANGE_START, ref.RANGE_END), (ODD_START, ODD_END)):
        for metric, interval, model, filters in cases:
            body = await get_json(
                attribution,
                token,
                "/v1/reports/timeseries",
                metric=metric,
                interval=interval,
                model=model,
                **{"from": start.isoformat(), "to": end.isoformat()},
                **filters,
            )
            assert body["interval"] == interval
            assert body["timezone"] == "Asia/Shanghai"
            expected = ref.series(ds, metric, interval, model, start, end, **filters)
            got = [(point["start"], point["value"]) for point in body["points"]]
            assert [stamp for stamp, _ in got] == [stamp for stamp, _ in expected]
            for (stamp, value), (_, want) in zip(got, expected, strict=True):
                if metric == "orders":
                    assert value == pytest.approx(want, abs=ORDERS_TOLERANCE), stamp
                else:
                    assert value == want, (metric, interval, model, filters, stamp)
    # Day buckets start at Shanghai midnight (16:00 UTC), the first one before an odd `from`.
    day = await get_json(attribution, token, "/v1/reports/timeseries", metric="gmv", **ODD_RANGE)
    assert [point["start"] for point in day["points"]] == [
        "2026-10-10T16:00:00Z",
        "2026-10-11T16:00:00Z",
        "2026-10-12T16:00:00Z",
        "2026-10-13T16:00:00Z",
    ]
    # GMV per day sums to the report's total credited GMV.
    total = sum(Decimal(point["value"]) for point in day["points"])
    ads = await get_json(attribution, token, "/v1/reports/contents", **ODD_RANGE)
    assert total == sum(Decimal(row["gmv"]) for row in ads["rows"])


async def test_reports_on_a_seeded_shop_match_the_reference(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    admin_token: str,
) -> None:
    """One shop (built once: it is the slow part), every check against the reference."""
    ds = await ref.build_shop(catalog, attribution, admin_token)
    await check_ads_and_contents_match_the_reference_under_every_model(attribution, ds, admin_token)
    await check_live_rooms_split_direct_and_indirect_gmv(attribution, ds, admin_token)
    await check_ranges_filters_and_inactive_rows_match_the_reference(attribution, ds, admin_token)
    await check_division_by_zero_is_null_and_money_is_exact(attribution, ds, admin_token)
    await check_spend_in_another_currency_is_left_out_and_named(attribution, ds, admin_token)
    await check_csv_is_the_json_rows(attribution, ds, admin_token)
    await check_timeseries_matches_the_reference(attribution, ds, admin_token)


async def test_tenants_see_only_their_own_data(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    tenant: str,
    make_token: TokenFactory,
) -> None:
    token_a = make_token(tenant, "admin")
    ds = await ref.build_shop(catalog, attribution, token_a, seed=3, events=120, orders=8)
    token_b = make_token(tenant + "-b", "admin")
    # B has an empty catalog and no data: nothing of A's shows, whatever the options.
    for path in ("/v1/reports/ads", "/v1/reports/contents"):
        for inactive in ("false", "true"):
            body = await get_json(attribution, token_b, path, include_inactive=inactive, **RANGE)
            assert body["rows"] == []
            assert body["warnings"] == []
    empty = await get_json(attribution, token_b, "/v1/reports/ads", **RANGE)
    assert all(row["impressions"] == 0 and row["gmv"] == "0.00" for row in empty["by_format"])
    for metric in ("impressions", "views", "clicks", "orders", "gmv"):
        series = await get_json(
            attribution, token_b, "/v1/reports/timeseries", metric=metric, interval="hour", **RANGE
        )
        assert {point["value"] for point in series["points"]} <= {0, "0.00"}
        assert len(series["points"]) == 96  # B's timezone is still the default, UTC
    # Filters naming A's objects find nothing for B.
    for path, params in (
        ("/v1/reports/ads", {"campaign_id": "camp-a"}),
        ("/v1/reports/contents", {"account_id": "acc-dy"}),
        ("/v1/reports/timeseries", {"metric": "clicks", "content_id": "v1"}),
        ("/v1/reports/timeseries", {"metric": "gmv", "ad_id": "ad-overlay-1"}),
    ):
        body = await get_json(
            attribution, token_b, path, include_inactive="true", **params, **RANGE
        )
        assert body.get("rows", []) == []
        assert {point["value"] for point in body.get("points", [])} <= {0, "0.00"}

    # B then builds a shop with the same ids: each tenant sees exactly its own.
    ds_b = await ref.build_shop(catalog, attribution, token_b, seed=99, events=60, orders=5)
    for token, data in ((token_a, ds), (token_b, ds_b)):
        ads = await get_json(attribution, token, "/v1/reports/ads", model="linear", **RANGE)
        expected = ref.ads_report(data, "linear", ref.RANGE_START, ref.RANGE_END)
        assert_same_rows(ads["rows"], expected["rows"], "ad_id")
        contents = await get_json(
            attribution, token, "/v1/reports/contents", model="linear", **RANGE
        )
        assert_same_rows(
            contents["rows"],
            ref.contents_report(data, "linear", ref.RANGE_START, ref.RANGE_END),
            "content_id",
        )
        series = await get_json(
            attribution, token, "/v1/reports/timeseries", metric="impressions", **RANGE
        )
        assert [(p["start"], p["value"]) for p in series["points"]] == ref.series(
            data, "impressions", "day", "linear", ref.RANGE_START, ref.RANGE_END
        )
