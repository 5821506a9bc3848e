"""GET /v1/experiments: the tenant's experiments, the latest start first; no one else's."""

from __future__ import annotations

from tests.attribution.order_setup import Shop, at
from tests.attribution.test_experiments_api import experiment, put, shop  # noqa: F401  # fixture
from tests.conftest import auth, new_tenant


async def test_lists_the_latest_start_first_and_only_the_tenants_own(
    shop: Shop,  # noqa: F811  # the fixture imported above
    make_token,
) -> None:
    for experiment_id, hours in (("early", -5), ("late", 3), ("middle", 0)):
        body = experiment("click_rate", starts_at=at(hours=hours).isoformat())
        assert (await put(shop, experiment_id, body)).status_code == 201
    reader = auth(make_token(shop.tenant, "reports:read"))
    mine = await shop.attribution.get("/v1/experiments", headers=reader)
    theirs = await shop.attribution.get(
        "/v1/experiments", headers=auth(make_token(new_tenant(), "reports:read"))
    )
    assert mine.status_code == 200, mine.text
    listed = mine.json()["experiments"]
    assert [e["experiment_id"] for e in listed] == ["late", "middle", "early"]
    assert listed[0]["variants"][1]["content_ids"] == ["v2"]
    assert theirs.json() == {"experiments": []}
    unauthorised = await shop.attribution.get("/v1/experiments")
    assert unauthorised.status_code == 401
