"""Optional steps, held dimensions and breakdown attribution through the HTTP API, combined
with every other mode, on SQLite and PostgreSQL: random queries (hypothesis) against the
brute-force reference of ``reference_modes`` over a world posted through the public APIs;
a worked example with orders; the refusals."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.attribution.funnel_data import (
    BREAKDOWNS,
    World,
    build_world,
    event_at,
    iso,
    mark_optional,
    post_events,
    post_json,
    post_order,
    put_catalog,
    random_query,
)
from tests.attribution.reference_modes import (
    reference_modes,
    reference_time_to_convert,
    reference_trends,
    reference_users,
)
from tests.attribution.test_funnel_modes_api import (
    STEPS,
    assert_mode_query_refused,
    with_mode,
)
from tests.conftest import auth

pytestmark = pytest.mark.usefixtures("funnel_clock")

HOLDS = ("content_id", "product_id", "ad_id", "platform", "account_id")
COMMON = ("impression", "view", "click")
_WORLDS: dict[str, World] = {}


def with_more_modes(rng: random.Random, query: dict[str, Any]) -> dict[str, Any]:
    """``with_mode`` (order, exclusions), then optional steps, holds and an attribution."""
    steps = query["steps"]
    n = len(steps)
    for step in steps:
        if rng.random() < 0.5:  # the common types, for chains that get somewhere
            step["type"] = rng.choice(COMMON)
    ordered = query["order"] != "unordered"
    required = mark_optional(rng, query, 0.6)
    if len(required) < n:  # exclusions lie between required steps
        for exclusion in query.get("exclusions", []):
            exclusion["from_step"] = max(k for k in required if k <= exclusion["from_step"])
            exclusion["to_step"] = min(k for k in required if k > exclusion["from_step"])
    if rng.random() < 0.4:
        query["hold_constant"] = rng.sample(HOLDS, rng.choice((1, 1, 2)))
        for key in query["hold_constant"]:  # a hold and conflicting filters are refused
            for filters in [query.get("filters") or {}, *(s.get("filters") or {} for s in steps)]:
                filters.pop(key, None)
    if rng.random() < 0.5:
        query["breakdown"] = rng.choice(BREAKDOWNS)
        choices = ["first_step", "all_steps"] + (["last_step", "step"] if ordered else [])
        query["breakdown_attribution"] = rng.choice(choices)
        if query["breakdown_attribution"] == "step":
            query["breakdown_step"] = rng.choice(
                [k for k in range(n) if not steps[k].get("optional")]
            )
    else:
        query.pop("breakdown", None)
    return query


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32))
async def test_every_combination_of_modes_matches_the_brute_force_reference(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str, seed: int
) -> None:
    world = _WORLDS.get(tenant)
    if world is None:  # one world per database, built on the first example
        world = _WORLDS[tenant] = await build_world(
            random.Random(13), catalog, attribution, tenant, make_token(tenant, "admin"), events=150
        )
    token = make_token(tenant, "reports:read")
    rng = random.Random(seed)
    query = with_more_modes(rng, with_mode(rng, random_query(rng, world)))
    got = await post_json(attribution, token, "/v1/funnels", query)
    assert got == reference_modes(world.items, query), query
    plain = {k: v for k, v in query.items() if not k.startswith("breakdown")}
    step = rng.randrange(1, len(query["steps"]))
    status = rng.choice(("reached", "dropped"))
    users = await post_json(
        attribution, token, "/v1/funnels/users", {**plain, "step": step, "status": status}
    )
    assert users == {
        "users": reference_users(world.items, plain, step, status),
        "next_cursor": None,
    }, (plain, step, status)
    if query["order"] != "unordered":
        timed = {**plain, "from_step": 0}
        got = await post_json(attribution, token, "/v1/funnels/time-to-convert", timed)
        assert got == reference_time_to_convert(world.items, timed), timed
    trend = {**plain, "interval": rng.choice(("day", "week"))}
    got = await post_json(attribution, token, "/v1/funnels/trends", trend)
    assert got == reference_trends(world.items, trend, "UTC"), trend


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32))
@example(seed=36377)  # a tied user's value that the fold alone would have counted
async def test_held_and_last_step_funnels_folded_by_clickhouse_match_the_brute_force_reference(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str, seed: int
) -> None:
    """The ordered funnels ClickHouse folds beyond the plain one: held dimensions without a
    breakdown, and a breakdown by the last step reached (order steps included)."""
    world = _WORLDS.get(tenant)
    if world is None:
        world = _WORLDS[tenant] = await build_world(
            random.Random(13), catalog, attribution, tenant, make_token(tenant, "admin"), events=150
        )
    token = make_token(tenant, "reports:read")
    rng = random.Random(seed)
    query = random_query(rng, world)
    for step in query["steps"]:
        if rng.random() < 0.5:  # the common types, for chains that get somewhere
            step["type"] = rng.choice(COMMON)
    if rng.random() < 0.5:
        query.pop("breakdown", None)
        query["hold_constant"] = rng.sample(HOLDS, rng.choice((1, 1, 2)))
        for key in query["hold_constant"]:  # a hold and conflicting filters are refused
            for filters in [
                query.get("filters") or {},
                *(s.get("filters") or {} for s in query["steps"]),
            ]:
                filters.pop(key, None)
    else:
        query["breakdown"] = rng.choice(BREAKDOWNS)
        query["breakdown_attribution"] = "last_step"
    got = await post_json(attribution, token, "/v1/funnels", query)
    assert got == reference_modes(world.items, query), query


async def test_viewers_who_clicked_and_bought_the_same_product(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> None:
    admin = make_token(tenant, "admin")
    t0 = await post_timed(
        catalog,
        attribution,
        admin,
        [
            ("same", "view", 0, {"product_id": "p1"}),
            ("same", "click", 10, {"product_id": "p1"}),
            ("switched", "view", 0, {"product_id": "p1"}),
            ("switched", "click", 10, {"product_id": "p2"}),
            ("other", "view", 0, {"product_id": "p2"}),
            ("other", "click", 10, {"product_id": "p2"}),
        ],
    )
    for order_id, user, products in (
        ("o1", "same", ["p1", "p2"]),  # one of its lines is p1
        ("o2", "switched", ["p2"]),
        ("o3", "other", ["p1"]),
    ):
        when = t0 + dt.timedelta(seconds=20)
        await post_order(attribution, auth(admin), order_id, "paid", when, user, products)
    query = {
        "steps": [{"type": "view"}, {"type": "click"}, {"type": "order"}],
        "from": iso(t0),
        "to": iso(t0 + dt.timedelta(hours=1)),
        "hold_constant": ["product_id"],
    }
    reader = make_token(tenant, "reports:read")
    got = await post_json(attribution, reader, "/v1/funnels", query)
    assert [s["users"] for s in got["steps"]] == [3, 2, 1]
    bought = await post_json(attribution, reader, "/v1/funnels/users", {**query, "step": 2})
    assert bought["users"] == ["same"]
    dropped = {**query, "step": 2, "status": "dropped"}
    assert (await post_json(attribution, reader, "/v1/funnels/users", dropped))["users"] == [
        "other"
    ]
    # Another tenant sees none of it.
    stranger = make_token(f"{tenant}-other", "reports:read")
    got = await post_json(attribution, stranger, "/v1/funnels", query)
    assert [s["users"] for s in got["steps"]] == [0, 0, 0]
    # Optional click: a buyer of the same product counts at the order whether or not they
    # clicked it; the click counts only those whose chain has it.
    optional = {
        **query,
        "steps": [{"type": "view"}, {"type": "click", "optional": True}, {"type": "order"}],
    }
    got = await post_json(attribution, reader, "/v1/funnels", optional)
    assert [(s["users"], s["dropped_off"]) for s in got["steps"]] == [(3, None), (2, 1), (1, 2)]


#: The held example's events: ``(user, type, seconds after t0, fields)``.
HELD_EXAMPLE: list[tuple[str, str, int, dict[str, Any]]] = [
    # later: c2's chain starts later (5 s), so it is the user's: 25 s to the click
    ("later", "view", 0, {"content": "c1"}),
    ("later", "click", 10, {"content": "c1"}),
    ("later", "view", 5, {"content": "c2"}),
    ("later", "click", 30, {"content": "c2"}),
    # same_start: both start at 0 s; c2 clicks earlier: 20 s
    ("same_start", "view", 0, {"content": "c1"}),
    ("same_start", "click", 40, {"content": "c1"}),
    ("same_start", "view", 0, {"content": "c2"}),
    ("same_start", "click", 20, {"content": "c2"}),
    # twice: two views of c1 at one instant, then a click; two views of c2 apart
    ("twice", "view", 0, {"content": "c1"}),
    ("twice", "view", 0, {"content": "c1"}),
    ("twice", "click", 10, {"content": "c1"}),
    ("twice", "view", 100, {"content": "c2"}),
    ("twice", "view", 101, {"content": "c2"}),
]


async def test_a_held_funnel_takes_the_best_chain_of_all_the_held_values(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> None:
    """Each content is its own funnel; a user's chain is the best of theirs (the deepest,
    then the latest start, then the earliest later steps), including a content whose items
    share an instant and match two steps (counted by the exact engine)."""
    t0 = await post_timed(catalog, attribution, make_token(tenant, "admin"), HELD_EXAMPLE)
    reader = make_token(tenant, "reports:read")
    query = {
        "steps": [{"type": "view"}, {"type": "click"}],
        "from": iso(t0),
        "to": iso(t0 + dt.timedelta(hours=1)),
        "hold_constant": ["content_id"],
    }
    got = await post_json(attribution, reader, "/v1/funnels", query)
    assert [s["users"] for s in got["steps"]] == [3, 3]
    # twice's chain: c1's second view (0 s) to the click (10 s)
    assert got["steps"][1]["median_seconds_from_previous"] == 20
    assert got["steps"][1]["average_seconds_from_previous"] == (25 + 20 + 10) / 3
    twice = {**query, "steps": [{"type": "view"}, {"type": "view"}, {"type": "click"}]}
    got = await post_json(attribution, reader, "/v1/funnels", twice)
    # Two distinct views at one instant take steps 1 and 2 of c1's chain: twice reaches the
    # click; c2's two views reach step 2 only. The others view each content once.
    assert [s["users"] for s in got["steps"]] == [3, 1, 1]
    assert got["steps"][1]["median_seconds_from_previous"] == 0
    assert got["steps"][2]["median_seconds_from_previous"] == 10


async def test_a_last_step_breakdown_of_two_views_at_one_instant(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> None:
    """Two views at one instant take steps 1 and 2 (the exact engine counts such a user);
    the click reached last places the user under its content only."""
    admin = make_token(tenant, "admin")
    await put_catalog(catalog, attribution, admin)
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    await post_events(
        attribution,
        auth(admin),
        [
            event_at(t0, "l1", "view", "u", "c1"),
            event_at(t0, "l2", "view", "u", "c1"),
            event_at(t0 + dt.timedelta(seconds=10), "l3", "click", "u", "c2"),
        ],
    )
    query = {
        "steps": [{"type": "view"}, {"type": "view"}, {"type": "click"}],
        "from": iso(t0),
        "to": iso(t0 + dt.timedelta(hours=1)),
        "breakdown": "content_id",
        "breakdown_attribution": "last_step",
    }
    got = await post_json(attribution, make_token(tenant, "reports:read"), "/v1/funnels", query)
    assert [s["users"] for s in got["steps"]] == [1, 1, 1]
    assert [(b["value"], [s["users"] for s in b["steps"]]) for b in got["breakdown"]] == [
        ("c2", [1, 1, 1])
    ]


async def post_timed(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    admin: str,
    events: list[tuple[str, str, int, dict[str, Any]]],
) -> dt.datetime:
    """The test catalog, then each ``(user, type, seconds after t0, fields)`` as event
    ``e1``, ``e2``, …; returns ``t0``."""
    await put_catalog(catalog, attribution, admin)
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    await post_events(
        attribution,
        auth(admin),
        [
            event_at(t0 + dt.timedelta(seconds=seconds), f"e{i}", kind, user, **fields)
            for i, (user, kind, seconds, fields) in enumerate(events, start=1)
        ],
    )
    return t0


OPTIONAL = [{"type": "view"}, {"type": "click", "optional": True}, {"type": "order"}]


@pytest.mark.parametrize(
    ("path", "extra", "field", "words"),
    [
        (
            "",
            {"steps": [{"type": "view", "optional": True}, *STEPS[1:]]},
            "steps.0.optional",
            ["first"],
        ),
        (
            "",
            {"steps": [*STEPS[:2], {"type": "order", "optional": True}]},
            "steps.2.optional",
            ["last"],
        ),
        (
            "",
            {"steps": OPTIONAL, "order": "unordered"},
            "steps.1.optional",
            ["`ordered` or `strict`"],
        ),
        (
            "",
            {"steps": OPTIONAL, "exclusions": [{"type": "like", "from_step": 1, "to_step": 2}]},
            "exclusions.0.from_step",
            ["optional"],
        ),
        ("", {"hold_constant": ["content_kind"]}, "hold_constant.0", ["product_id"]),
        ("", {"hold_constant": ["ad_id", "ad_id"]}, "hold_constant", ["more than once"]),
        (
            "",
            {
                "hold_constant": ["content_id"],
                "steps": [{"type": "view", "filters": {"content_id": "c1"}}, *STEPS[1:]],
                "filters": {"content_id": "c2"},
            },
            "hold_constant",
            ["c1", "c2"],
        ),
        (
            "",
            {
                "hold_constant": ["product_id"],
                "steps": [STEPS[0], STEPS[1], {"type": "order", "filters": {"product_id": "p2"}}],
                "filters": {"product_id": "p1"},
            },
            "hold_constant",
            ["p1", "p2"],
        ),
        ("", {"breakdown_attribution": "last_step"}, "breakdown_attribution", ["breakdown"]),
        (
            "",
            {"breakdown": "platform", "breakdown_attribution": "sideways"},
            "breakdown_attribution",
            ["first_step", "all_steps"],
        ),
        (
            "",
            {"breakdown": "platform", "breakdown_step": 1},
            "breakdown_step",
            ["breakdown_attribution `step`"],
        ),
        (
            "",
            {"breakdown": "platform", "breakdown_attribution": "step"},
            "breakdown_step",
            ["needs breakdown_step"],
        ),
        (
            "",
            {"breakdown": "platform", "breakdown_attribution": "step", "breakdown_step": 3},
            "breakdown_step",
            ["0 to 2"],
        ),
        (
            "",
            {
                "steps": OPTIONAL,
                "breakdown": "platform",
                "breakdown_attribution": "step",
                "breakdown_step": 1,
            },
            "breakdown_step",
            ["optional"],
        ),
        (
            "",
            {"breakdown": "platform", "breakdown_attribution": "last_step", "order": "unordered"},
            "breakdown_attribution",
            ["`first_step` or `all_steps`"],
        ),
        ("/time-to-convert", {"steps": OPTIONAL, "to_step": 1}, "to_step", ["optional"]),
    ],
)
async def test_nonsense_combinations_are_422_naming_the_field(
    attribution: httpx.AsyncClient, report_token: str, path, extra, field, words
) -> None:
    await assert_mode_query_refused(attribution, report_token, path, extra, field, words)
