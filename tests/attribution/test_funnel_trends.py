"""``POST /v1/funnels/trends`` on SQLite and PostgreSQL: a worked example across the spring
DST change of New York, and random worlds around a local midnight against the brute-force
reference (every chain of every user, periods found by walking the range)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import httpx
import pytest
import time_machine

from tests.attribution import funnel_data
from tests.attribution.funnel_data import build_world, post_events, put_catalog, random_query
from tests.attribution.reference_modes import reference_trends
from tests.attribution.test_funnel_modes_api import with_mode
from tests.conftest import auth

#: The worlds' events start two minutes before New York's first EDT midnight (a Monday).
WORLD_T0 = dt.datetime(2026, 3, 9, 3, 58, tzinfo=dt.UTC)


async def _timezone(attribution: httpx.AsyncClient, token: str, timezone: str) -> None:
    response = await attribution.put(
        "/v1/settings", json={"timezone": timezone}, headers=auth(token)
    )
    assert response.status_code in (200, 201), response.text


async def _trends(
    attribution: httpx.AsyncClient, token: str, body: dict[str, Any], expect: int = 200
) -> Any:
    response = await attribution.post("/v1/funnels/trends", json=body, headers=auth(token))
    assert response.status_code == expect, response.text
    return response.json()


async def test_days_follow_the_tenants_timezone_across_dst(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> None:
    with time_machine.travel(dt.datetime(2026, 3, 12, tzinfo=dt.UTC), tick=True):
        admin = make_token(tenant, "admin")
        await put_catalog(catalog, attribution, admin)
        await _timezone(attribution, admin, "America/New_York")

        def ev(i: int, kind: str, user: str, when: str) -> dict[str, Any]:
            return {
                "event_id": f"d{i}",
                "type": kind,
                "occurred_at": when,
                "user_id": user,
                "content_id": "c1",
            }

        await post_events(
            attribution,
            auth(admin),
            [
                # a: Saturday 23:30 EST, click at Sunday 00:10: enters and converts on Saturday
                ev(1, "view", "a", "2026-03-08T04:30:00Z"),
                ev(2, "click", "a", "2026-03-08T05:10:00Z"),
                # d: Sunday (23 hours long) 12:00 EDT, clicks two minutes later
                ev(3, "view", "d", "2026-03-08T16:00:00Z"),
                ev(4, "click", "d", "2026-03-08T16:02:00Z"),
                # e: Sunday 23:30 EDT, never clicks
                ev(5, "view", "e", "2026-03-09T03:30:00Z"),
                # b: Monday 00:30 EDT (Sunday 23:30 under standard time); its click comes
                # after the one-hour window
                ev(6, "view", "b", "2026-03-09T04:30:00Z"),
                ev(7, "click", "b", "2026-03-09T05:31:00Z"),
                # f: a click without a view enters nothing
                ev(8, "click", "f", "2026-03-09T06:00:00Z"),
                # g: exactly Monday 00:00 EDT, a period's first instant: enters Monday
                ev(9, "view", "g", "2026-03-09T04:00:00Z"),
            ],
        )
        reader = make_token(tenant, "reports:read")
        query = {
            "steps": [{"type": "view"}, {"type": "click"}],
            "from": "2026-03-07T05:00:00Z",
            "to": "2026-03-10T04:00:00Z",
            "window_seconds": 3600,
        }
        body = await _trends(attribution, reader, query)
        assert body == {
            "timezone": "America/New_York",
            "points": [
                {
                    "period_start": "2026-03-07T00:00:00-05:00",
                    "entered": 1,
                    "converted": 1,
                    "conversion_rate": 1.0,
                },
                {
                    "period_start": "2026-03-08T00:00:00-05:00",
                    "entered": 2,
                    "converted": 1,
                    "conversion_rate": 0.5,
                },
                {
                    "period_start": "2026-03-09T00:00:00-04:00",
                    "entered": 2,
                    "converted": 0,
                    "conversion_rate": 0.0,
                },
            ],
        }
        weekly = await _trends(attribution, reader, {**query, "interval": "week"})
        assert [(p["period_start"], p["entered"], p["converted"]) for p in weekly["points"]] == [
            ("2026-03-02T00:00:00-05:00", 3, 2),
            ("2026-03-09T00:00:00-04:00", 2, 0),
        ]
        # A period with nobody entering has no rate.
        empty = await _trends(
            attribution,
            reader,
            {**query, "from": "2026-03-10T04:00:00Z", "to": "2026-03-11T04:00:00Z"},
        )
        assert empty["points"] == [
            {
                "period_start": "2026-03-10T00:00:00-04:00",
                "entered": 0,
                "converted": 0,
                "conversion_rate": None,
            }
        ]
        refused = await _trends(attribution, reader, {**query, "breakdown": "platform"}, 422)
        assert refused["errors"][0]["field"] == "breakdown"


async def test_trends_match_the_brute_force_reference(
    attribution: httpx.AsyncClient,
    catalog: httpx.AsyncClient,
    make_token,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(funnel_data, "NOW", WORLD_T0 + dt.timedelta(days=3))
    rng = random.Random(5)
    with time_machine.travel(WORLD_T0 + dt.timedelta(days=3), tick=True):
        admin = make_token(tenant, "admin")
        world = await build_world(rng, catalog, attribution, tenant, admin, events=90)
        reader = make_token(tenant, "reports:read")
        converted = split = 0
        for q in range(16):
            timezone = ("America/New_York", "Etc/GMT+4", "UTC", "Asia/Kathmandu")[q % 4]
            await _timezone(attribution, admin, timezone)
            query = with_mode(rng, random_query(rng, world))
            query.pop("breakdown", None)
            query["interval"] = rng.choice(("day", "day", "week", "month"))
            got = await _trends(attribution, reader, query)
            assert got == reference_trends(world.items, query, timezone), query
            converted += sum(p["converted"] for p in got["points"])
            split += len(got["points"]) > 1
        assert converted > 0
        assert split >= 3  # some ranges meet a local midnight
