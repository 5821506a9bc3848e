"""PUT /v1/experiments/{id} and its results over HTTP, against a brute-force recount.

Random viewers see variant contents (impressions and views), some click, complete, like or
buy; the answer's units, conversions, mixed exposure and sums must equal a recount over the
posted events, and each comparison must be the statistics module's for those counts (whose
formulas are checked against scipy in test_experiment_stats.py).
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from services.attribution.experiments import stats
from tests.attribution.order_setup import Shop, at, make_shop, touch
from tests.conftest import auth, new_tenant

VARIANTS = [
    {"key": "control", "content_ids": ["v1"]},
    {"key": "cut-b", "content_ids": ["v2"]},
]
START, END = at(hours=-1), at(days=2)


def experiment(metric: str, **fields: Any) -> dict[str, Any]:
    """A valid body; ``fields`` override its keys."""
    return {
        "name": "Two cuts",
        "hypothesis": "The shorter cut gets more clicks",
        "variants": VARIANTS,
        "metric": metric,
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
    } | fields


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def put(shop: Shop, experiment_id: str, body: dict[str, Any]) -> Any:
    return await shop.attribution.put(
        f"/v1/experiments/{experiment_id}", json=body, headers=shop.headers
    )


async def results(shop: Shop, experiment_id: str, **params: str) -> Any:
    return await shop.attribution.get(
        f"/v1/experiments/{experiment_id}/results", params=params, headers=shop.headers
    )


def random_events(seed: int) -> list[dict[str, Any]]:
    """Viewers of v1 or v2 (a few of both, some outside the range); clicks, completions,
    likes and comments on what they saw, and events on an unrelated content."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(rng.randint(20, 60)):
        user = f"u{n}"
        seen = [rng.choice(["v1", "v2"])]
        if rng.random() < 0.1:
            seen = ["v1", "v2"]
        for content in seen:
            when = at(hours=rng.uniform(-3, 40))  # some before the experiment starts
            events.append(
                touch(rng.choice(["impression", "view"]), when, user=user, content=content)
            )
            for kind in ("click", "view_complete", "like", "comment"):
                if rng.random() < 0.3:
                    later = at(hours=rng.uniform(-3, 50))  # some after it ends
                    events.append(touch(kind, later, user=user, content=content))
        if rng.random() < 0.2:
            events.append(touch("click", at(hours=1), user=user, content="v3"))
    return events


def recount(events: list[dict[str, Any]], conversion_types: tuple[str, ...]) -> dict[str, Any]:
    """Exposure and conversion per variant straight from the events (in range only)."""
    variant_of = {c: v["key"] for v in VARIANTS for c in v["content_ids"]}
    start, end = START.isoformat(), END.isoformat()

    def in_range(e: dict[str, Any]) -> bool:
        # Every instant here is UTC with the same format, so strings order like instants.
        return start <= e["occurred_at"] < end and e.get("content_id") in variant_of

    exposed: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if in_range(e) and e["type"] in ("impression", "view"):
            exposed[e["user_id"]].add(variant_of[e["content_id"]])
    assigned = {u: next(iter(vs)) for u, vs in exposed.items() if len(vs) == 1}
    converted: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if in_range(e) and e["type"] in conversion_types:
            key = variant_of[e["content_id"]]
            if assigned.get(e["user_id"]) == key:
                converted[key].add(e["user_id"])
    units = {v["key"]: sum(1 for k in assigned.values() if k == v["key"]) for v in VARIANTS}
    return {
        "units": units,
        "conversions": {v["key"]: len(converted[v["key"]]) for v in VARIANTS},
        "mixed": sum(1 for vs in exposed.values() if len(vs) > 1),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("metric", "types"),
    [
        ("click_rate", ("click",)),
        ("completion_rate", ("view_complete",)),
        ("engagement_rate", ("like", "comment", "share")),
    ],
)
async def test_rate_metrics_equal_a_recount_of_the_events(
    shop: Shop, seed: int, metric: str, types: tuple[str, ...]
) -> None:
    events = random_events(seed)
    for i in range(0, len(events), 500):
        await shop.events(*events[i : i + 500])
    assert (await put(shop, "exp1", experiment(metric))).status_code == 201
    response = await results(shop, "exp1")
    assert response.status_code == 200, response.text
    body = response.json()
    expected = recount(events, types)
    assert body["metric"] == metric
    assert body["currency"] is None
    assert body["mixed_exposure"] == expected["mixed"]
    assert {v["key"]: v["units"] for v in body["variants"]} == expected["units"]
    assert {v["key"]: v["conversions"] for v in body["variants"]} == expected["conversions"]
    control, variant = body["variants"]
    assert control["vs_control"] is None
    units, conversions = expected["units"], expected["conversions"]
    assert variant["rate"] == pytest.approx(conversions["cut-b"] / units["cut-b"])
    compared = stats.compare(
        stats.proportion_arm(units["control"], conversions["control"]),
        stats.proportion_arm(units["cut-b"], conversions["cut-b"]),
    )
    vs = variant["vs_control"]
    for field in ("relative_lift", "p_value", "chance_to_win", "absolute_diff"):
        reference = getattr(compared, field)
        assert vs[field] == (None if reference is None else pytest.approx(reference, abs=1e-9))
    assert vs["viewers_needed"] == compared.viewers_needed
    srm = stats.srm_p_value(list(units.values()))
    assert body["srm"]["p_value"] == (None if srm is None else pytest.approx(srm))
    # Every variant below 100 viewers is named in a warning, and mixed exposure too.
    assert len(body["warnings"]) == len(VARIANTS) + (1 if expected["mixed"] else 0)


async def test_order_rate_and_gmv_per_viewer_from_last_touch_credits(shop: Shop) -> None:
    """u1 and u2 see v1, u3 and u4 see v2. u1 clicks v1 and buys 100.00 (credited to v1); u3
    clicks v2 and buys 3 × 50.00; u2 buys without a touch (organic, credited to nothing)."""
    await shop.events(
        touch("view", at(hours=1), user="u1", content="v1"),
        touch("view", at(hours=1), user="u2", content="v1"),
        touch("view", at(hours=1), user="u3", content="v2"),
        touch("view", at(hours=1), user="u4", content="v2"),
        touch("click", at(hours=2), user="u1", content="v1", product="p1"),
        touch("click", at(hours=2), user="u3", content="v2", product="p2"),
    )
    await shop.order(order_id="o1", user="u1", when=at(hours=3))
    await shop.order(order_id="o2", user="u3", when=at(hours=3), items=[("p2", 3, "50.00")])
    await shop.order(order_id="o3", user="u2", when=at(hours=3), items=[("p3", 1, "10.00")])

    await put(shop, "orders", experiment("order_rate"))
    body = (await results(shop, "orders")).json()
    assert [(v["key"], v["units"], v["conversions"], v["rate"]) for v in body["variants"]] == [
        ("control", 2, 1, 0.5),
        ("cut-b", 2, 1, 0.5),
    ]

    await put(shop, "gmv", experiment("gmv_per_viewer"))
    body = (await results(shop, "gmv")).json()
    assert body["currency"] == "CNY"
    assert [(v["key"], v["units"], v["sum"], v["mean"]) for v in body["variants"]] == [
        ("control", 2, "100.00", 50.0),
        ("cut-b", 2, "150.00", 75.0),
    ]
    assert all(v["conversions"] is None and v["rate"] is None for v in body["variants"])
    # Per-viewer values 100, 0 against 150, 0: the mean rises from 50 to 75 (lift +50 %).
    vs = body["variants"][1]["vs_control"]
    assert vs["absolute_diff"] == pytest.approx(25.0)
    assert vs["relative_lift"] == pytest.approx(0.5)
    assert Decimal(body["variants"][0]["sum"]) == Decimal("100.00")


async def test_put_creates_then_replaces_and_results_come_as_csv(shop: Shop) -> None:
    first = await put(shop, "exp1", experiment("click_rate"))
    assert first.status_code == 201, first.text
    assert first.json()["variants"] == VARIANTS
    again = await put(shop, "exp1", experiment("click_rate"))
    assert again.status_code == 200
    assert again.json()["updated_at"] == first.json()["updated_at"]  # nothing changed
    renamed = await put(shop, "exp1", experiment("click_rate", name="Two cuts, v2"))
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Two cuts, v2"

    await shop.events(
        touch("view", at(hours=1), user="u1", content="v1"),
        touch("view", at(hours=1), user="u2", content="v2"),
        touch("click", at(hours=2), user="u2", content="v2"),
    )
    response = await results(shop, "exp1", format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["key"], r["units"], r["conversions"]) for r in rows] == [
        ("control", "1", "0"),
        ("cut-b", "1", "1"),
    ]
    assert rows[0]["p_value"] == ""  # the control is not compared with itself


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"variants": VARIANTS[:1]}, "variants"),
        ({"variants": [VARIANTS[0], {"key": "control", "content_ids": ["v2"]}]}, "distinct"),
        ({"variants": [VARIANTS[0], {"key": "b", "content_ids": ["v1"]}]}, "two variants"),
        ({"metric": "revenue"}, "metric"),
        ({"ends_at": START.isoformat()}, "ends_at"),
        ({"starts_at": "2026-11-01T00:00:00"}, "starts_at"),
    ],
)
async def test_bad_experiments_are_422_naming_the_problem(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    response = await put(shop, "bad", experiment("click_rate") | change)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text
    assert (await results(shop, "bad")).status_code == 404


async def test_unknown_experiment_is_404_and_other_tenants_see_nothing(
    shop: Shop, make_token
) -> None:
    response = await results(shop, "nope")
    assert response.status_code == 404
    assert "PUT /v1/experiments/nope" in response.json()["detail"]
    await put(shop, "exp1", experiment("click_rate"))
    other = auth(make_token(new_tenant(), "admin"))
    response = await shop.attribution.get("/v1/experiments/exp1/results", headers=other)
    assert response.status_code == 404
    reader = auth(make_token(shop.tenant, "reports:read"))
    assert (await put_as(shop, reader)).status_code == 403


async def put_as(shop: Shop, headers: dict[str, str]) -> Any:
    return await shop.attribution.put(
        "/v1/experiments/exp2", json=experiment("click_rate"), headers=headers
    )
