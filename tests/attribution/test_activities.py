"""GET /v1/reports/activities: engagement activities against the same time before them.

Random views, likes, comments, shares and follows on the contents; each activity's figures
must equal a recount of the posted events in its window and the one before, on SQLite and
PostgreSQL. The activity reaches the report through the catalog change feed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from typing import Any

import pytest

from tests.attribution.order_setup import Shop, at, clock_fixture, iso, make_shop, touch
from tests.conftest import auth, new_tenant

NOW = at(days=3, hours=6)
FROM, TO = at(), at(days=3)
CAMPAIGNS: dict[str, dict[str, Any]] = {
    "qa1": {
        "objective": "engagement",
        "activity": "qa",
        "starts_at": at(days=1),
        "ends_at": at(days=2),
    },
    "draw1": {
        "objective": "engagement",
        "activity": "lucky_draw",
        "starts_at": at(days=2, hours=12),
    },
    "topic0": {"objective": "engagement", "activity": "topic", "starts_at": at(hours=20)},
    "sale1": {"objective": "sales", "starts_at": at(days=1), "ends_at": at(days=2)},
    "old1": {
        "objective": "engagement",
        "activity": "challenge",
        "starts_at": at(days=-3),
        "ends_at": at(days=-1),
    },
}
ADS = {"ad1": ("qa1", "v1"), "ad2": ("draw1", "v2"), "ad3": ("draw1", "v1"), "ad4": ("sale1", "v1")}


clock = clock_fixture(NOW)


@pytest.fixture
async def shop(catalog, attribution, tenant, admin_token) -> Shop:
    h = auth(admin_token)
    shop = await make_shop(catalog, attribution, tenant, admin_token)
    for campaign_id, fields in CAMPAIGNS.items():
        body = {"name": campaign_id.upper()} | {
            k: iso(v) if isinstance(v, dt.datetime) else v for k, v in fields.items()
        }
        response = await catalog.put(f"/v1/campaigns/{campaign_id}", json=body, headers=h)
        assert response.status_code == 201, response.text
    for ad_id, (campaign_id, content_id) in ADS.items():
        body = {"campaign_id": campaign_id, "content_id": content_id, "format": "native"}
        response = await catalog.put(f"/v1/ads/{ad_id}", json=body, headers=h)
        assert response.status_code == 201, response.text
    assert (await attribution.post("/v1/sync", headers=h)).status_code == 200
    return shop


def random_events(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    kinds = ["view", "view", "view", "like", "comment", "share", "follow", "click"]
    return [
        touch(
            rng.choice(kinds),
            at(minutes=rng.randint(-2 * 24 * 60, int((NOW - at()).total_seconds() // 60) - 1)),
            user=f"u{rng.randint(0, 20)}",
            content=rng.choice(["v1", "v2", "v9"]),
            event_id=f"s{seed}e{n}",
        )
        for n in range(rng.randint(200, 400))
    ]


def recount(
    events: list[dict[str, Any]], contents: set[str], lo: dt.datetime, hi: dt.datetime
) -> dict[str, Any]:
    counts = dict.fromkeys(("view", "like", "comment", "share", "follow"), 0)
    for e in events:
        t = dt.datetime.fromisoformat(e["occurred_at"])
        if e["content_id"] in contents and lo <= t < hi and e["type"] in counts:
            counts[e["type"]] += 1
    views = counts["view"]
    engaged = counts["like"] + counts["comment"] + counts["share"]
    return {
        "views": views,
        "likes": counts["like"],
        "comments": counts["comment"],
        "shares": counts["share"],
        "follows": counts["follow"],
        "engagement_rate": engaged / views if views else None,
        "comments_per_1000_views": counts["comment"] * 1000 / views if views else None,
    }


def change(during: float | None, before: float | None) -> float | None:
    return None if during is None or not before else (during - before) / abs(before)


async def report(shop: Shop, **params: Any) -> Any:
    query = {"from": iso(FROM), "to": iso(TO)} | params
    return await shop.attribution.get("/v1/reports/activities", params=query, headers=shop.headers)


@pytest.mark.parametrize("seed", [1, 2])
async def test_each_activity_equals_a_recount_of_its_window_and_the_one_before(
    shop: Shop, seed: int
) -> None:
    events = random_events(seed)
    for i in range(0, len(events), 500):
        await shop.events(*events[i : i + 500])
    response = await report(shop)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [a["campaign_id"] for a in body["activities"]] == ["topic0", "qa1", "draw1"]
    expected_windows = {
        "qa1": (at(days=1), at(days=2), at(days=0)),
        "draw1": (at(days=2, hours=12), None, at(days=1, hours=18)),
        "topic0": (at(hours=20), None, None),
    }
    for row in body["activities"]:
        start, end, before_from = expected_windows[row["campaign_id"]]
        during_to = dt.datetime.fromisoformat(row["during_to"])
        if end is None:  # still running: up to the report's now
            assert NOW <= during_to <= NOW + dt.timedelta(minutes=5)
            end = during_to
            before_from = before_from or start - (end - start)
        assert dt.datetime.fromisoformat(row["during_from"]) == start
        assert during_to == end
        contents = {c for a, (campaign, c) in ADS.items() if campaign == row["campaign_id"]}
        assert row["content_ids"] == sorted(contents)
        during = recount(events, contents, start, end)
        before = recount(events, contents, start - (end - start), start)
        if row["campaign_id"] != "draw1":
            assert dt.datetime.fromisoformat(row["before_from"]) == before_from
        assert row["during"] == pytest.approx(during)
        assert row["before"] == pytest.approx(before)
        for name in ("engagement_rate", "comments_per_1000_views", "follows"):
            assert row["change"][name] == pytest.approx(change(during[name], before[name]))
    assert row["activity"] == "lucky_draw"
    # topic0 has no ads: nothing to measure, and the answer says so.
    assert body["activities"][0]["during"]["views"] == 0
    assert any("topic0" in w for w in body["warnings"])


async def test_csv_and_isolation(shop: Shop, attribution, make_token) -> None:
    await shop.events(*random_events(3))
    body = (await report(shop)).json()
    response = await report(shop, format="csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    other = auth(make_token(new_tenant(), "reports:read"))
    theirs = await attribution.get(
        "/v1/reports/activities", params={"from": iso(FROM), "to": iso(TO)}, headers=other
    )
    assert [r["campaign_id"] for r in rows] == ["topic0", "qa1", "draw1"]
    assert rows[1]["content_ids"] == "v1"
    assert int(rows[1]["during_views"]) == body["activities"][1]["during"]["views"]
    assert int(rows[1]["before_follows"]) == body["activities"][1]["before"]["follows"]
    assert theirs.status_code == 200
    assert theirs.json()["activities"] == []


@pytest.mark.parametrize(
    ("params", "named"),
    [({"format": "pdf"}, "format"), ({"to": "tomorrow"}, "to"), ({"from": iso(TO)}, "from")],
)
async def test_bad_queries_are_422(shop: Shop, params: dict[str, str], named: str) -> None:
    response = await report(shop, **params)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert named in response.json()["detail"]


async def test_a_campaign_that_stops_being_an_activity_leaves_the_report(
    shop: Shop, catalog
) -> None:
    body = {"name": "QA", "objective": "sales", "starts_at": iso(at(days=1))}
    response = await catalog.put("/v1/campaigns/qa1", json=body, headers=shop.headers)
    assert response.status_code == 200, response.text
    assert (await shop.attribution.post("/v1/sync", headers=shop.headers)).status_code == 200
    ids = [a["campaign_id"] for a in (await report(shop)).json()["activities"]]
    assert ids == ["topic0", "draw1"]
