"""Time buckets: the tenant's timezone, DST days of 23 and 25 hours, real hour buckets,
offsets of :30 and :45, and spend days; through the API and on the pure functions."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from services.attribution.reports.buckets import local_day_start, make_buckets, spend_days
from tests.attribution import report_reference as ref
from tests.conftest import TokenFactory, auth

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with ref.fixed_clock():
        yield


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ny(year: int, month: int, day: int) -> dt.datetime:
    """Local midnight in New York."""
    return dt.datetime(year, month, day, tzinfo=NEW_YORK)


def starts(body: dict[str, Any]) -> list[dt.datetime]:
    return [ref.parse(point["start"]) for point in body["points"]]


def hours_between(values: list[dt.datetime]) -> list[float]:
    return [(b - a) / dt.timedelta(hours=1) for a, b in itertools.pairwise(values)]


def assert_days(
    body: dict[str, Any], days: list[tuple[str, int, int]], *, end: dt.datetime
) -> None:
    """A daily series is these (start, hours long, value) days, the last one ending at ``end``."""
    assert [p["start"] for p in body["points"]] == [start for start, _, _ in days]
    assert hours_between([*starts(body), end]) == [hours for _, hours, _ in days]
    assert [p["value"] for p in body["points"]] == [value for _, _, value in days]


async def series(
    client: httpx.AsyncClient, token: str, start: dt.datetime, end: dt.datetime, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        "/v1/reports/timeseries",
        params={"from": start.isoformat(), "to": end.isoformat(), **params},
        headers=auth(token),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def setup_tenant(
    client: httpx.AsyncClient, token: str, timezone: str, events: list[tuple[str, dt.datetime]]
) -> ref.DataSet:
    response = await client.put(
        "/v1/settings", json={"timezone": timezone, "currency": "USD"}, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    ds = ref.DataSet(timezone=timezone, currency="USD")
    posted = [
        {
            "event_id": f"t{n}",
            "type": event_type,
            "occurred_at": at.isoformat(),
            "user_id": "buyer",
            "content_id": "v1",
            "product_id": "p1",
        }
        for n, (event_type, at) in enumerate(events)
    ]
    response = await client.post("/v1/events", json={"events": posted}, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(posted)
    ds.events = [{**event, "at": ref.parse(event["occurred_at"])} for event in posted]
    return ds


async def test_new_york_days_are_23_and_25_hours_and_hours_are_real(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    token = make_token(tenant, "admin")
    events = [
        ("impression", utc(2026, 3, 8, 4, 59, 59)),  # Mar 7, 23:59:59 EST
        ("impression", utc(2026, 3, 8, 5, 0)),  # Mar 8, 00:00 EST
        ("impression", utc(2026, 3, 8, 6, 59, 59)),  # 01:59:59 EST
        ("impression", utc(2026, 3, 8, 7, 0)),  # 03:00 EDT: 02:00 never happened
        ("impression", utc(2026, 3, 9, 3, 59, 59)),  # Mar 8, 23:59:59 EDT
        ("impression", utc(2026, 3, 9, 4, 0)),  # Mar 9, 00:00 EDT
        ("impression", utc(2026, 11, 1, 4, 0)),  # Nov 1, 00:00 EDT
        ("view", utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, the first one
        ("impression", utc(2026, 11, 1, 6, 30)),  # 01:30 EST, the second one
        ("impression", utc(2026, 11, 2, 4, 59, 59)),  # Nov 1, 23:59:59 EST
        ("impression", utc(2026, 11, 2, 5, 0)),  # Nov 2, 00:00 EST
    ]
    ds = await setup_tenant(attribution, token, "America/New_York", events)
    # An order paid in the second 01:00 hour of Nov 1, credited to the view at 01:30 EDT.
    response = await attribution.post(
        "/v1/orders",
        json={
            "order_id": "o-dst",
            "status": "paid",
            "occurred_at": "2026-11-01T01:45:00-05:00",
            "user_id": "buyer",
            "currency": "USD",
            "items": [{"product_id": "p1", "quantity": 1, "unit_price": "25.50"}],
        },
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    ds.orders = ["o-dst"]
    await ref.fetch_credits(attribution, token, ds)

    # Spring forward: Mar 8 has 23 hours; fall back: Nov 1 has 25, and 01:00 twice.
    daily = {
        (ny(2026, 3, 7), ny(2026, 3, 10)): [
            ("2026-03-07T05:00:00Z", 24, 1),
            ("2026-03-08T05:00:00Z", 23, 4),
            ("2026-03-09T04:00:00Z", 24, 1),
        ],
        (ny(2026, 10, 31), ny(2026, 11, 3)): [
            ("2026-10-31T04:00:00Z", 24, 0),
            ("2026-11-01T04:00:00Z", 25, 3),
            ("2026-11-02T05:00:00Z", 24, 1),
        ],
    }
    for (start, end), days in daily.items():
        body = await series(attribution, token, start, end, metric="impressions", interval="day")
        assert body["timezone"] == "America/New_York"
        assert body["interval"] == "day"
        assert_days(body, days, end=end)
    march_hours = await series(
        attribution, token, ny(2026, 3, 8), ny(2026, 3, 9), metric="impressions", interval="hour"
    )
    assert len(march_hours["points"]) == 23
    assert set(hours_between(starts(march_hours))) == {1.0}
    local_hours = [s.astimezone(NEW_YORK).hour for s in starts(march_hours)]
    assert local_hours == [0, 1, *range(3, 24)]
    assert [p["value"] for p in march_hours["points"]][:3] == [1, 1, 1]

    nov_start = ny(2026, 11, 1)
    nov_end = ny(2026, 11, 2)
    for metric in ("impressions", "views", "orders", "gmv"):
        hours = await series(attribution, token, nov_start, nov_end, metric=metric, interval="hour")
        assert len(hours["points"]) == 25
        assert set(hours_between(starts(hours))) == {1.0}
        local = [s.astimezone(NEW_YORK).strftime("%H%z") for s in starts(hours)]
        assert local[:4] == ["00-0400", "01-0400", "01-0500", "02-0500"]
        expected = ref.series(ds, metric, "hour", "last_touch", nov_start, nov_end)
        assert [(p["start"], p["value"]) for p in hours["points"]] == expected
    gmv = await series(attribution, token, nov_start, nov_end, metric="gmv", interval="hour")
    assert gmv["currency"] == "USD"
    assert gmv["points"][2] == {"start": "2026-11-01T06:00:00Z", "value": "25.50"}
    views = await series(attribution, token, nov_start, nov_end, metric="views", interval="hour")
    assert views["points"][1] == {"start": "2026-11-01T05:00:00Z", "value": 1}

    # A range across both changes: every day bucket, each 23, 24 or 25 hours long.
    year = await series(attribution, token, ny(2026, 1, 1), ny(2027, 1, 1), metric="impressions")
    assert len(year["points"]) == 365
    lengths = hours_between([*starts(year), utc(2027, 1, 1, 5)])
    assert sorted(set(lengths)) == [23, 24, 25]
    assert lengths.count(23) == lengths.count(25) == 1
    assert sum(p["value"] for p in year["points"]) == 10


async def test_shanghai_and_half_hour_zones_bucket_by_local_time(
    attribution: httpx.AsyncClient, tenant: str, make_token: TokenFactory
) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    token = make_token(tenant, "admin")
    events = [
        ("impression", dt.datetime(2026, 6, 1, 0, 0, tzinfo=shanghai)),  # 16:00Z May 31
        ("impression", dt.datetime(2026, 6, 1, 23, 59, 59, tzinfo=shanghai)),
        ("impression", dt.datetime(2026, 6, 2, 7, 45, tzinfo=shanghai)),
        ("click", dt.datetime(2026, 6, 2, 8, 15, tzinfo=shanghai)),
    ]
    ds = await setup_tenant(attribution, token, "Asia/Shanghai", events)
    start = dt.datetime(2026, 6, 1, tzinfo=shanghai)
    end = dt.datetime(2026, 6, 4, tzinfo=shanghai)
    days = await series(attribution, token, start, end, metric="impressions")
    assert days["interval"] == "day"  # the default
    assert [p["start"] for p in days["points"]] == [
        "2026-05-31T16:00:00Z",
        "2026-06-01T16:00:00Z",
        "2026-06-02T16:00:00Z",
    ]
    assert [p["value"] for p in days["points"]] == [2, 1, 0]
    hours = await series(attribution, token, start, end, metric="impressions", interval="hour")
    assert len(hours["points"]) == 72
    assert hours["points"][0]["start"] == "2026-05-31T16:00:00Z"
    # A range that starts and ends mid-bucket still gets whole local buckets.
    odd = await series(
        attribution,
        token,
        dt.datetime(2026, 6, 1, 12, 30, tzinfo=shanghai),
        dt.datetime(2026, 6, 2, 8, 20, tzinfo=shanghai),
        metric="clicks",
        interval="hour",
    )
    assert odd["points"][0]["start"] == "2026-06-01T04:00:00Z"
    assert odd["points"][-1] == {"start": "2026-06-02T00:00:00Z", "value": 1}
    assert [(p["start"], p["value"]) for p in odd["points"]] == ref.series(
        ds,
        "clicks",
        "hour",
        "last_touch",
        dt.datetime(2026, 6, 1, 12, 30, tzinfo=shanghai),
        dt.datetime(2026, 6, 2, 8, 20, tzinfo=shanghai),
    )

    # UTC+5:45: hour buckets start at :15 past the UTC hour.
    response = await attribution.put(
        "/v1/settings", json={"timezone": "Asia/Kathmandu"}, headers=auth(token)
    )
    assert response.status_code == 200
    ds.timezone = "Asia/Kathmandu"
    kathmandu = await series(attribution, token, start, end, metric="impressions", interval="hour")
    assert kathmandu["points"][0]["start"] == "2026-05-31T15:15:00Z"
    assert {p["start"][14:] for p in kathmandu["points"]} == {"15:00Z"}
    assert [(p["start"], p["value"]) for p in kathmandu["points"]] == ref.series(
        ds, "impressions", "hour", "last_touch", start, end
    )


# --- the pure functions ----------------------------------------------------------------------


def test_buckets_cover_the_range_with_whole_local_units() -> None:
    buckets = make_buckets(utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 8), NEW_YORK, "hour")
    assert [b.strftime("%H:%M") for b in buckets.starts] == [
        "03:00",
        "04:00",
        "05:00",
        "06:00",
        "07:00",
    ]
    assert buckets.slot_seconds == 900
    assert buckets.origin == utc(2026, 11, 1, 3, 30)
    assert buckets.bucket_of_slot(0) == 0
    assert buckets.bucket_of_slot(2) == 1  # 04:00 UTC


def test_a_half_hour_dst_shift_makes_half_hour_buckets() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # +11 → +10:30 on Apr 5, 2026 at 02:00
    buckets = make_buckets(utc(2026, 4, 4, 14), utc(2026, 4, 4, 17), lord_howe, "hour")
    assert [b.isoformat() for b in buckets.starts] == [
        "2026-04-04T14:00:00+00:00",  # 01:00 +11
        "2026-04-04T15:00:00+00:00",  # 01:30 +10:30: the repeated half hour
        "2026-04-04T15:30:00+00:00",  # 02:00 +10:30
        "2026-04-04T16:30:00+00:00",
    ]


def test_a_skipped_midnight_starts_the_day_at_the_jump() -> None:
    sao_paulo = ZoneInfo("America/Sao_Paulo")  # 2018-11-04 00:00 → 01:00
    assert local_day_start(dt.date(2018, 11, 4), sao_paulo) == utc(2018, 11, 4, 3)
    buckets = make_buckets(utc(2018, 11, 3, 12), utc(2018, 11, 5, 12), sao_paulo, "day")
    assert hours_between([*buckets.starts, utc(2018, 11, 6, 2)]) == [24, 23, 24]


def test_local_mean_time_shrinks_the_slot() -> None:
    buckets = make_buckets(utc(1850, 1, 1), utc(1850, 1, 3), NEW_YORK, "day")
    assert buckets.starts[1] == dt.datetime(1850, 1, 1, 4, 56, 2, tzinfo=UTC)  # LMT -4:56:02
    assert buckets.slot_seconds == 2


def test_spend_days_are_the_local_days_that_begin_in_the_range() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    day = dt.date
    assert spend_days(
        dt.datetime(2026, 3, 1, tzinfo=shanghai), dt.datetime(2026, 3, 3, tzinfo=shanghai), shanghai
    ) == (day(2026, 3, 1), day(2026, 3, 2))
    assert spend_days(
        dt.datetime(2026, 3, 1, 0, 0, 1, tzinfo=shanghai),
        dt.datetime(2026, 3, 3, 0, 0, 1, tzinfo=shanghai),
        shanghai,
    ) == (day(2026, 3, 2), day(2026, 3, 3))
    assert (
        spend_days(
            dt.datetime(2026, 3, 1, 1, tzinfo=shanghai),
            dt.datetime(2026, 3, 1, 23, tzinfo=shanghai),
            shanghai,
        )
        is None
    )
    # The 23-hour day still counts once.
    assert spend_days(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), NEW_YORK) == (
        day(2026, 3, 8),
        day(2026, 3, 8),
    )
