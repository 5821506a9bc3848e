"""Campaigns with ``objective: engagement`` run an activity: qa, lucky_draw, topic, challenge.

The activity is stored, answered, and sent in the change feed; with any other objective, or
none, or an unknown activity, the campaign is refused with a 422 naming ``activity``.
"""

from __future__ import annotations

import pytest

from tests.catalog.factories import Shop, campaign_body, new_id, problem_issues, read_feed


@pytest.mark.parametrize("activity", ["qa", "lucky_draw", "topic", "challenge"])
async def test_an_engagement_campaign_keeps_its_activity(
    shop: Shop, sync_token: str, activity: str
) -> None:
    campaign = await shop.campaign(objective="engagement", activity=activity)
    read = await shop.request("GET", f"/v1/campaigns/{campaign['id']}")
    feed = await read_feed(shop.client, sync_token)
    assert campaign["activity"] == activity
    assert read.json()["activity"] == activity
    sent = [c for c in feed if c["entity"] == "campaign" and c["id"] == campaign["id"]]
    assert sent[-1]["data"]["activity"] == activity
    assert sent[-1]["data"]["objective"] == "engagement"


async def test_a_campaign_without_an_activity_answers_null(shop: Shop) -> None:
    assert (await shop.campaign())["activity"] is None
    assert (await shop.campaign(objective="engagement"))["activity"] is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (campaign_body(activity="qa"), "objective 'sales'"),
        (campaign_body(objective=None, activity="lucky_draw"), "no objective"),
        (campaign_body(objective="Engagement", activity="topic"), "objective 'Engagement'"),
        (campaign_body(objective="engagement", activity="quiz"), "qa"),
    ],
)
async def test_an_activity_needs_the_engagement_objective(
    shop: Shop, body: dict[str, object], says: str
) -> None:
    path = f"/v1/campaigns/{new_id('k')}"
    response = await shop.request("PUT", path, json=body)
    assert problem_issues(response, 422, "activity") == []
    assert says in response.text
    assert (await shop.request("GET", path)).status_code == 404
