"""``POST /v1/funnels`` end to end, on SQLite and PostgreSQL.

Random worlds (catalog, events and orders posted through the public APIs) are compared with
the brute-force reference of ``funnel_data``; hand-written cases pin the ``order`` step,
validation, tenant isolation and auth.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from services.attribution.funnels import planner, reader
from services.attribution.funnels.engine import BreakdownResult, FunnelResult, StepStat
from services.attribution.funnels.planner import FunnelPlan
from services.attribution.funnels.router import funnel_source
from services.attribution.funnels.schemas import BREAKDOWN_KEYS, FILTER_KEYS, STEP_TYPES
from tests.attribution.conftest import WorldFactory
from tests.attribution.funnel_data import (
    BREAKDOWNS,
    NOW,
    PROBLEM_JSON,
    SLOTS,
    event_at,
    iso,
    post_events,
    post_json,
    post_order,
    put_catalog,
    random_query,
    reference,
)
from tests.conftest import auth, new_tenant

pytestmark = pytest.mark.usefixtures("funnel_clock")

WORLDS = 6  # per backend; each world answers QUERIES random funnels
QUERIES = 16
T0 = NOW - dt.timedelta(days=2)  # the order token's shop: its first clicks


async def funnel(
    attribution: httpx.AsyncClient, token: str, query: dict[str, Any], expect: int = 200
) -> dict[str, Any]:
    body: dict[str, Any] = await post_json(attribution, token, "/v1/funnels", query, expect)
    return body


def users(body: dict[str, Any]) -> list[int]:
    return [step["users"] for step in body["steps"]]


# --------------------------------------------------------------------------- reference


async def test_random_worlds_match_the_brute_force_reference(
    attribution: httpx.AsyncClient, make_world: WorldFactory, make_token
) -> None:
    checked = 0
    nonempty = 0
    for seed in range(WORLDS):
        rng = random.Random(seed)
        world = await make_world(rng, of=new_tenant())
        reader = make_token(world.tenant, "reports:read")
        for q in range(QUERIES):
            query = random_query(rng, world)
            # Every breakdown kind comes up in every world, and so do unbroken funnels.
            query.pop("breakdown", None)
            if q % 2:
                query["breakdown"] = BREAKDOWNS[(seed + q // 2) % len(BREAKDOWNS)]
            got = await funnel(attribution, reader, query)
            expected = reference(world.items, query)
            assert got == expected, f"seed={seed} query={query}"
            checked += 1
            nonempty += got["steps"][0]["users"] > 0
    assert checked == WORLDS * QUERIES
    assert nonempty >= checked // 2  # the data sets are not trivially empty


async def test_repeated_steps_window_edges_and_ties_match_the_reference(
    attribution: httpx.AsyncClient, make_world: WorldFactory
) -> None:
    """Dense data on few slots: many equal timestamps, chains exactly at the window edge."""
    world = await make_world(99, events=160, slots=8)
    queries: list[dict[str, Any]] = [
        {"steps": [{"type": "view"}, {"type": "view"}, {"type": "view"}]},
        {"steps": [{"type": "impression"}, {"type": "view"}, {"type": "impression"}]},
        {"steps": [{"type": "click"}, {"type": "order"}, {"type": "order"}]},
        {
            "steps": [{"type": "like"}, {"type": "like", "filters": {"content_kind": "live"}}],
            "breakdown": "content_id",
        },
    ]
    for query in queries:
        for window in (1, 10, 20, 70):
            full = {
                **query,
                "from": iso(world.at(0)),
                "to": iso(world.at(4)),
                "window_seconds": window,
            }
            got = await funnel(attribution, world.token, full)
            assert got == reference(world.items, full), full


async def test_both_ways_of_leaving_out_non_starters_give_the_same_answers(
    attribution: httpx.AsyncClient, make_world: WorldFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Semi-join or HAVING on the per-user aggregate (PostgreSQL): the same funnels."""
    rng = random.Random(2024)
    world = await make_world(rng)
    queries = [random_query(rng, world) for _ in range(12)]
    for i, query in enumerate(queries):
        query.pop("breakdown", None)
        if i % 2:
            query["breakdown"] = BREAKDOWNS[i // 2 % len(BREAKDOWNS)]
    for semi_join in (True, False):
        monkeypatch.setattr(planner, "prune_with_semi_join", lambda *_, s=semi_join: s)
        for query in queries:
            got = await funnel(attribution, world.token, query)
            assert got == reference(world.items, query), (semi_join, query)


# --------------------------------------------------------------------------- hand-written


async def test_a_hand_checked_funnel(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> None:
    token = make_token(tenant, "admin")
    await put_catalog(catalog, attribution, token)
    t0 = NOW - dt.timedelta(days=1)

    def ev(i: int, kind: str, user: str, seconds: float) -> dict[str, Any]:
        return event_at(t0 + dt.timedelta(seconds=seconds), f"h{i}", kind, user)

    await post_events(
        attribution,
        auth(token),
        [
            # a: impression → view 10 s → click 30 s (exactly the window) → counts fully
            ev(1, "impression", "a", 0),
            ev(2, "view", "a", 10),
            ev(3, "click", "a", 30),
            # b: click 1 µs past the window; view at the same instant as the impression
            ev(4, "impression", "b", 0),
            ev(5, "view", "b", 0),
            ev(6, "click", "b", 30.000001),
            # c: view before impression only: stops at step 1
            ev(7, "view", "c", 0),
            ev(8, "impression", "c", 5),
            # d: impression before `from`: not counted at all
            ev(9, "impression", "d", -1),
            ev(10, "view", "d", 1),
        ],
    )
    body = await funnel(
        attribution,
        token,
        {
            "steps": [{"type": "impression"}, {"type": "view"}, {"type": "click"}],
            "from": iso(t0),
            "to": iso(t0 + dt.timedelta(hours=1)),
            "window_seconds": 30,
        },
    )
    assert body == {
        "steps": [
            {
                "type": "impression",
                "users": 3,
                "conversion_from_start": 1.0,
                "conversion_from_previous": None,
                "median_seconds_from_previous": None,
                "average_seconds_from_previous": None,
                "dropped_off": None,
            },
            {
                "type": "view",
                "users": 2,
                "conversion_from_start": 2 / 3,
                "conversion_from_previous": 2 / 3,
                # a's view 10 s after the impression, b's at the same instant
                "median_seconds_from_previous": 5.0,
                "average_seconds_from_previous": 5.0,
                "dropped_off": 1,  # c
            },
            {
                "type": "click",
                "users": 1,
                "conversion_from_start": 1 / 3,
                "conversion_from_previous": 0.5,
                "median_seconds_from_previous": 20.0,
                "average_seconds_from_previous": 20.0,
                "dropped_off": 1,  # b
            },
        ],
        "breakdown": [],
    }


@pytest.fixture
async def order_token(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_token, tenant: str
) -> str:
    """An admin token of a shop with clicks at :data:`T0` (+ a few minutes), orders paid at
    T0 + 30 min:

    * u1 clicks c1 (p1) and pays o1 (p1);
    * u2 clicks c3 (p2) and pays o2 (p2), then o2 is cancelled (its credits go);
    * u3 clicks c1 and only creates o3 (never paid);
    * u4 clicks c1 (p1) and c3 (p2) and pays o4 (p1 + p2): two last-touch credits;
    * u5 clicks c3 then c1 (both p1) and pays o5 (p1): last touch c1, first touch c3;
    * u6 clicks c1 (p1) on instagram and pays o6 (p1): the credit's platform is instagram.
    """
    token: str = make_token(tenant, "admin")
    await put_catalog(catalog, attribution, token)
    headers = auth(token)

    def click(
        i: int, user: str, content: str, product: str, minutes: int, **extra: str
    ) -> dict[str, Any]:
        when = T0 + dt.timedelta(minutes=minutes)
        return event_at(when, f"k{i}", "click", user, content, product_id=product, **extra)

    await post_events(
        attribution,
        headers,
        [
            click(1, "u1", "c1", "p1", 0),
            click(2, "u2", "c3", "p2", 0),
            click(3, "u3", "c1", "p1", 0),
            click(4, "u4", "c1", "p1", 0),
            click(5, "u4", "c3", "p2", 1),
            click(6, "u5", "c3", "p1", 0),
            click(7, "u5", "c1", "p1", 2),
            click(8, "u6", "c1", "p1", 0, platform="instagram"),
        ],
    )
    later = T0 + dt.timedelta(minutes=30)
    await post_order(attribution, headers, "o1", "paid", later, "u1", ["p1"])
    await post_order(attribution, headers, "o2", "paid", later, "u2", ["p2"])
    await post_order(
        attribution, headers, "o2", "cancelled", later + dt.timedelta(minutes=1), "u2", ["p2"]
    )
    await post_order(attribution, headers, "o3", "created", later, "u3", ["p1"])
    await post_order(attribution, headers, "o4", "paid", later, "u4", ["p1", "p2"])
    await post_order(attribution, headers, "o5", "paid", later, "u5", ["p1"])
    await post_order(attribution, headers, "o6", "paid", later, "u6", ["p1"])
    return token


def _on_order(base: dict[str, Any], **filters: str) -> dict[str, Any]:
    return {**base, "steps": [{"type": "click"}, {"type": "order", "filters": filters}]}


async def test_the_order_step(attribution: httpx.AsyncClient, order_token: str) -> None:
    base = {
        "steps": [{"type": "click"}, {"type": "order"}],
        "from": iso(T0 - dt.timedelta(hours=1)),
        "to": iso(T0 + dt.timedelta(hours=1)),
    }
    # Everyone but u3 (never paid); u2's order counts although it was cancelled later.
    body = await funnel(attribution, order_token, base)
    assert users(body) == [6, 5]
    # Gaps 30, 30, 29, 28 and 30 minutes (chains start at each user's latest click).
    assert body["steps"][1]["median_seconds_from_previous"] == 30 * 60
    # A content filter on the order step matches through the last-touch credits: o1, o4,
    # o5 and o6 credit c1; only o4 credits c3 (o5's c3 click is its first touch, not its
    # last; o2's credits went with its cancellation).
    assert users(await funnel(attribution, order_token, _on_order(base, content_id="c1"))) == [6, 4]
    assert users(await funnel(attribution, order_token, _on_order(base, content_id="c3"))) == [6, 1]
    # Products are the order's lines.
    assert users(await funnel(attribution, order_token, _on_order(base, product_id="p2"))) == [6, 2]
    # Global filters apply to both steps; c3 belongs to the tiktok account; o6's credited
    # click was on instagram.
    tiktok = {**base, "filters": {"platform": "tiktok"}}
    assert users(await funnel(attribution, order_token, tiktok)) == [3, 1]
    instagram = {**base, "filters": {"platform": "instagram"}}
    assert users(await funnel(attribution, order_token, instagram)) == [1, 1]
    kind = _on_order(base, content_kind="live")
    assert users(await funnel(attribution, order_token, kind)) == [6, 0]


async def test_order_as_first_step_breaks_down_by_every_credited_value(
    attribution: httpx.AsyncClient, order_token: str
) -> None:
    query = {
        "steps": [{"type": "order"}, {"type": "order"}],
        "from": iso(T0),
        "to": iso(T0 + dt.timedelta(hours=1)),
        "breakdown": "content_id",
    }

    async def split(breakdown: str) -> list[tuple[str, list[int]]]:
        body = await funnel(attribution, order_token, {**query, "breakdown": breakdown})
        assert users(body) == [5, 0]  # one order each: nobody has a second distinct one
        return [(b["value"], users(b)) for b in body["breakdown"]]

    # o4 counts under both of its credited contents; o2 (cancelled) has none left.
    assert await split("content_id") == [("c1", [4, 0]), ("c3", [1, 0])]
    assert await split("account_id") == [("acc-d", [4, 0]), ("acc-t", [1, 0])]
    assert await split("platform") == [
        ("douyin", [3, 0]),
        ("instagram", [1, 0]),
        ("tiktok", [1, 0]),
    ]
    assert await split("content_kind") == [("video", [4, 0])]
    assert await split("ad_id") == []


async def test_default_steps_and_window(attribution: httpx.AsyncClient, order_token: str) -> None:
    body = await funnel(
        attribution,
        order_token,
        {"from": iso(T0 - dt.timedelta(days=1)), "to": iso(T0 + dt.timedelta(days=1))},
    )
    assert [s["type"] for s in body["steps"]] == ["impression", "view", "click", "order"]
    assert users(body) == [0, 0, 0, 0]
    assert body["breakdown"] == []


# --------------------------------------------------------------------------- isolation, auth


async def test_another_tenants_events_never_count(
    attribution: httpx.AsyncClient, catalog: httpx.AsyncClient, make_world: WorldFactory, make_token
) -> None:
    world = await make_world(7, of=new_tenant(), orders=4)
    token_a, token_b = world.token, make_token(new_tenant(), "admin")
    await put_catalog(catalog, attribution, token_b)
    query = {
        "steps": [{"type": "view"}, {"type": "click"}],
        "from": iso(world.at(0)),
        "to": iso(world.at(SLOTS + 1)),
        "window_seconds": 3600,
        "breakdown": "platform",
    }
    seen_by_a = await funnel(attribution, token_a, query)
    assert seen_by_a["steps"][0]["users"] > 0
    assert seen_by_a == reference(world.items, query)
    seen_by_b = await funnel(attribution, token_b, query)
    assert users(seen_by_b) == [0, 0]
    assert seen_by_b["breakdown"] == []
    orders = {**query, "steps": [{"type": "order"}, {"type": "view"}], "breakdown": "content_id"}
    assert users(await funnel(attribution, token_b, orders)) == [0, 0]


async def test_funnels_need_a_token_with_reports_read(
    attribution: httpx.AsyncClient, make_token, tenant: str
) -> None:
    query = {
        "steps": [{"type": "view"}, {"type": "click"}],
        "from": "2026-01-01T00:00:00Z",
        "to": "2026-01-02T00:00:00Z",
    }
    response = await attribution.post("/v1/funnels", json=query)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await attribution.post(
        "/v1/funnels", json=query, headers=auth(make_token(tenant, "events:write"))
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "reports:read" in response.json()["detail"]
    await funnel(attribution, make_token(tenant, "reports:read"), query)


async def test_a_funnel_over_the_time_bound_is_503_and_the_next_one_is_served(
    attribution: httpx.AsyncClient,
    attribution_app,
    make_world: WorldFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = await make_world(3)
    token = world.token
    query = {
        "steps": [{"type": "impression"}, {"type": "view"}, {"type": "order"}],
        "from": iso(world.at(0)),
        "to": iso(world.at(SLOTS)),
    }
    stream = reader.stream_users
    cancelled = asyncio.Event()

    async def stalled_stream(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        async with aclosing(stream(*args, **kwargs)) as chunks:
            async for chunk in chunks:
                try:
                    await asyncio.Event().wait()  # as if the database never answered
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
                yield chunk

    monkeypatch.setattr(reader, "stream_users", stalled_stream)
    # The bound of the database's read: funnels from the database, not the analytic store.
    monkeypatch.setattr(attribution_app.state, "analytics", None)
    monkeypatch.setattr(attribution_app.state.settings, "report_timeout_seconds", 0.3)
    # Only a guard against hanging if the bound failed; the answer is what is checked.
    async with asyncio.timeout(60):
        response = await attribution.post("/v1/funnels", json=query, headers=auth(token))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "Retry-After" in response.headers
    assert cancelled.is_set()  # the read was stopped, not left running
    monkeypatch.setattr(reader, "stream_users", stream)
    monkeypatch.setattr(attribution_app.state.settings, "report_timeout_seconds", 30.0)
    assert await funnel(attribution, token, query) == reference(world.items, query)


# --------------------------------------------------------------------------- validation

FROM, TO = "2026-01-01T00:00:00Z", "2026-01-08T00:00:00+08:00"
OK_STEPS = [{"type": "view"}, {"type": "click"}]


@pytest.mark.parametrize(
    ("body", "field", "allowed"),
    [
        (
            {"steps": [{"type": "view"}, {"type": "purchase"}], "from": FROM, "to": TO},
            "steps.1.type",
            [*STEP_TYPES],
        ),
        ({"steps": [{"type": "view"}], "from": FROM, "to": TO}, "steps", ["2 to 10 steps"]),
        ({"steps": [{"type": "view"}] * 11, "from": FROM, "to": TO}, "steps", ["2 to 10"]),
        ({"steps": OK_STEPS, "from": TO, "to": FROM}, "body", ["must be before"]),
        ({"steps": OK_STEPS, "from": FROM, "to": FROM}, "body", ["must be before"]),
        (
            {"steps": OK_STEPS, "from": FROM, "to": TO, "window_seconds": 0},
            "window_seconds",
            ["between 1 and 7776000"],
        ),
        (
            {"steps": OK_STEPS, "from": FROM, "to": TO, "window_seconds": 90 * 86400 + 1},
            "window_seconds",
            ["between 1 and 7776000"],
        ),
        (
            {"steps": OK_STEPS, "from": FROM, "to": TO, "breakdown": "topic"},
            "breakdown",
            [*BREAKDOWN_KEYS],
        ),
        (
            {"steps": OK_STEPS, "from": FROM, "to": TO, "filters": {"campaign_id": "x"}},
            "filters",
            ["campaign_id", *FILTER_KEYS],
        ),
        (
            {
                "steps": [{"type": "view", "filters": {"topic": "x"}}, {"type": "click"}],
                "from": FROM,
                "to": TO,
            },
            "steps.0.filters",
            ["topic", *FILTER_KEYS],
        ),
        (
            {"steps": OK_STEPS, "from": FROM, "to": TO, "filters": {"platform": "myspace"}},
            "filters.platform",
            ["douyin", "tiktok", "xiaohongshu"],
        ),
        (
            {"steps": OK_STEPS, "from": "2026-01-01T00:00:00", "to": TO},
            "from",
            ["timezone offset"],
        ),
        (
            {"steps": OK_STEPS, "from": "9999-12-31T23:00:00-14:00", "to": TO},
            "from",
            ["from: is out of range once converted to UTC", "9999-12-31T23:59:59.999999Z"],
        ),
        (
            {"steps": OK_STEPS, "from": FROM, "to": "9999-12-31T23:00:00-14:00"},
            "to",
            ["to: is out of range once converted to UTC", "1970-01-01T00:00:00Z"],
        ),
        (
            {"steps": OK_STEPS, "from": "1969-12-31T23:59:59Z", "to": TO},
            "from",
            ["is before 1970-01-01T00:00:00Z"],
        ),
        ({"steps": OK_STEPS, "from": FROM, "to": TO, "colour": "red"}, "colour", ["not allowed"]),
        ({"steps": OK_STEPS, "to": TO}, "from", ["required"]),
    ],
)
async def test_invalid_queries_are_422_naming_what_is_allowed(
    attribution: httpx.AsyncClient, make_token, tenant: str, body, field, allowed
) -> None:
    response = await attribution.post(
        "/v1/funnels", json=body, headers=auth(make_token(tenant, "reports:read"))
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["status"] == 422
    assert {"type", "title", "detail", "errors"} <= set(problem)
    fields = [e["field"] for e in problem["errors"]]
    assert field in fields or (field == "body" and "" in fields), problem
    for text in allowed:
        assert text in problem["detail"], (text, problem["detail"])


async def test_a_range_longer_than_the_report_limit_is_422(
    attribution: httpx.AsyncClient, attribution_app, make_token, tenant: str
) -> None:
    limit = attribution_app.state.settings.max_report_days
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    query = {"steps": OK_STEPS, "from": iso(start)}
    token = make_token(tenant, "reports:read")
    await funnel(attribution, token, {**query, "to": iso(start + dt.timedelta(days=limit))})
    response = await attribution.post(
        "/v1/funnels",
        json={**query, "to": iso(start + dt.timedelta(days=limit, seconds=1))},
        headers=auth(token),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert f"at most {limit} days" in response.json()["detail"]


async def test_a_range_ending_at_the_last_instant_is_answered(
    attribution: httpx.AsyncClient, attribution_app, make_token, tenant: str
) -> None:
    """``to`` plus the window may reach past what a timestamp holds: no upper bound then."""
    limit = attribution_app.state.settings.max_report_days
    last = dt.datetime.max.replace(tzinfo=dt.UTC)
    for to, window in ((last, 1), (last - dt.timedelta(hours=1), 90 * 86400)):
        query = {
            "steps": OK_STEPS,
            "from": iso(to - dt.timedelta(days=limit)),
            "to": iso(to),
            "window_seconds": window,
        }
        body = await funnel(attribution, make_token(tenant, "reports:read"), query)
        assert users(body) == [0, 0]


# --------------------------------------------------------------------------- the source seam


class _RecordingSource:
    """A :class:`FunnelSource` answering fixed counts and keeping the plans it was asked."""

    def __init__(self) -> None:
        self.plans: list[FunnelPlan] = []

    async def step_counts(self, plan: FunnelPlan) -> FunnelResult:
        self.plans.append(plan)
        steps = [StepStat(8, 1.0, None, None), StepStat(2, 0.25, 0.25, 1.5)]
        small = [StepStat(1, 1.0, None, None), StepStat(1, 1.0, 1.0, 3.0)]
        big = [StepStat(7, 1.0, None, None), StepStat(1, 1 / 7, 1 / 7, 0.0)]
        return FunnelResult.of(
            steps, [BreakdownResult("tiktok", small), BreakdownResult("douyin", big)]
        )


async def test_the_route_answers_from_whichever_source_is_plugged_in(
    attribution: httpx.AsyncClient, attribution_app, make_token, tenant: str
) -> None:
    source = _RecordingSource()
    attribution_app.dependency_overrides[funnel_source] = lambda: source
    try:
        body = await funnel(
            attribution,
            make_token(tenant, "reports:read"),
            {
                "steps": [{"type": "view", "filters": {"ad_id": "ad1"}}, {"type": "order"}],
                "from": "2026-01-01T08:00:00+08:00",
                "to": "2026-01-02T00:00:00Z",
                "window_seconds": 60,
                "filters": {"platform": "douyin"},
                "breakdown": "platform",
            },
        )
    finally:
        del attribution_app.dependency_overrides[funnel_source]
    (plan,) = source.plans
    assert plan.tenant_id == tenant
    assert [(s.type, dict(s.filters)) for s in plan.steps] == [
        ("view", {"ad_id": "ad1"}),
        ("order", {}),
    ]
    assert dict(plan.filters) == {"platform": "douyin"}
    assert (plan.start, plan.end) == (
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )
    assert plan.start.utcoffset() == dt.timedelta(0)
    assert plan.window == dt.timedelta(seconds=60)
    assert plan.breakdown == "platform"
    assert users(body) == [8, 2]
    assert body["steps"][1] == {
        "type": "order",
        "users": 2,
        "conversion_from_start": 0.25,
        "conversion_from_previous": 0.25,
        "median_seconds_from_previous": 1.5,
        "average_seconds_from_previous": None,  # the source gave none
        "dropped_off": None,
    }
    # Most step-1 users first, whatever order the source listed them in.
    assert [(b["value"], users(b)) for b in body["breakdown"]] == [
        ("douyin", [7, 1]),
        ("tiktok", [1, 1]),
    ]
