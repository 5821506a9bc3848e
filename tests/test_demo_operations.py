"""The demo's content operations: an experiment of two cuts, replies and DMs, a Q&A week.

The plan is pure and valid per the events contract; posted with the demo month to the real
in-process services (both databases), the experiment shows a verdict, the interactions report
has answered and unanswered comments and DMs, the activities report and the scorecard show
the Q&A week.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import httpx
from fastapi import FastAPI

from services.attribution.events.validation import validate_event
from services.demo import demo_anchor, generate, load_demo
from services.demo.operations import ACTIVITY_CAMPAIGN, CLICKERS, EXPERIMENT_ID, plan

NOW = dt.datetime(2025, 3, 15, 9, 30, tzinfo=dt.UTC)


def test_the_plan_is_seeded_valid_and_stays_inside_the_month() -> None:
    data = generate(7, 4_000, demo_anchor(NOW))
    ops, again = plan(data), plan(data)
    assert ops == again
    ids = [e["event_id"] for e in ops.events]
    assert len(ids) == len(set(ids))
    assert not set(ids) & {e.event_id for e in data.events}
    for event in ops.events:
        assert validate_event(event, now=data.end).errors == [], event
        assert data.start <= dt.datetime.fromisoformat(event["occurred_at"]) < data.end
    kinds = Counter(e["type"] for e in ops.events)
    assert kinds["click"] == sum(CLICKERS)
    assert kinds["reply"] > 0
    assert kinds["dm"] > kinds["dm_reply"] > 0
    comments = {e.event_id for e in data.events if e.type == "comment"}
    replied = {e["reply_to"] for e in ops.events if e["type"] == "reply"}
    assert replied & comments  # the month's own comments are answered too …
    assert comments - replied  # … but not all of them


async def test_the_demo_shows_an_experiment_replies_and_an_activity(
    catalog_app: FastAPI, attribution_app: FastAPI, make_token: Any, tenant: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    token = make_token(tenant, "admin")
    await load_demo(
        catalog_url="http://catalog.test",
        attribution_url="http://attribution.test",
        token=token,
        events=3_000,
        seed=11,
        now=now,
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        attribution_transport=httpx.ASGITransport(app=attribution_app),
        operations=True,
    )
    data = generate(11, 3_000, demo_anchor(now))
    month = {"from": data.start.isoformat(), "to": data.end.isoformat()}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=attribution_app), base_url="http://attribution.test"
    ) as attribution:
        result = await attribution.get(f"/v1/experiments/{EXPERIMENT_ID}/results", headers=headers)
        talk = await attribution.get("/v1/reports/interactions", params=month, headers=headers)
        activities = await attribution.get("/v1/reports/activities", params=month, headers=headers)
        scorecard = await attribution.get(
            "/v1/reports/scorecard", params=month | {"level": "account"}, headers=headers
        )
    assert result.status_code == 200, result.text
    variants = result.json()["variants"]
    assert [(v["key"], v["conversions"]) for v in variants] == [("A", 120), ("B", 150)]
    b = variants[1]["vs_control"]
    assert 0.95 < b["chance_to_win"] < 0.99
    assert 0.05 < b["p_value"] < 0.1
    totals = talk.json()["totals"]
    assert totals["replied_within_1h"] > 0
    assert totals["unanswered_over_24h"] > 0
    assert totals["dms_replied"] > 0
    (activity,) = activities.json()["activities"]
    assert (activity["campaign_id"], activity["activity"]) == (ACTIVITY_CAMPAIGN, "qa")
    assert activity["during"]["comments"] > activity["before"]["comments"]
    assert activity["during"]["follows"] > activity["before"]["follows"]
    items = scorecard.json()["items"]
    assert items
    assert any(i["communication"]["comment_reply_rate"]["value"] for i in items)
