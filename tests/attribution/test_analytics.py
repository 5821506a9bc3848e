"""The analytic store: its versioned schema, replication of events, and reads from it.

Run on chdb (the embedded ClickHouse), with SQLite and PostgreSQL as the system of record.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from starlette.requests import Request
from typer.testing import CliRunner

from services.attribution.analytics import store
from services.attribution.analytics.funnels import ClickHouseFunnelSource, funnel_counts_statement
from services.attribution.analytics.paths import ClickHousePathSource
from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.viewers import ClickHouseViewers, unique_viewers_statement
from services.attribution.analytics.wiring import start_replication, stop_replication
from services.attribution.datadriven.router import path_source
from services.attribution.datadriven.source import SqlPathSource
from services.attribution.funnels.planner import FunnelPlan, plan_funnel
from services.attribution.funnels.router import funnel_source
from services.attribution.funnels.schemas import FunnelQuery
from services.attribution.funnels.source import SqlFunnelSource
from services.attribution.models import Event
from services.attribution.reports.router import _Reports
from services.attribution.reports.viewers import SqlViewers
from services.cli import app as cli
from tests.attribution import funnel_data
from tests.attribution.factories import batch, event, iso, stored_events
from tests.conftest import _ANALYTICS_DIR, TokenFactory, auth, new_tenant

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def replicator(app: FastAPI) -> EventReplicator:
    found: EventReplicator = app.state.analytics
    return found


def analytic_events(app: FastAPI, tenant: str) -> list[list[object]]:
    """``(event_id, rows without FINAL)`` per event of the tenant in ClickHouse."""
    return replicator(app).store.rows(
        f"SELECT event_id, count() FROM {{db}}.events FINAL WHERE tenant_id = {store.quote(tenant)}"
        " GROUP BY event_id ORDER BY event_id"
    )


async def system_of_record_ids(app: FastAPI, tenant: str) -> list[str]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(Event.event_id).where(Event.tenant_id == tenant).order_by(Event.event_id)
        )
        return list(rows.scalars())


def test_the_schema_is_versioned_and_applied_once() -> None:
    analytic = store.embedded(_ANALYTICS_DIR, f"test_{uuid.uuid4().hex[:16]}")
    assert analytic.migrate() == [version for version, _ in store.SCHEMA]
    assert analytic.migrate() == []
    assert analytic.version() == store.SCHEMA[-1][0]
    key = analytic.rows(
        "SELECT sorting_key FROM system.tables WHERE database = "
        f"{store.quote(analytic.database)} AND name = 'events'"
    )
    assert key == [["tenant_id, user_id, t, event_id"]]


def test_another_data_directory_is_refused_in_the_same_process() -> None:
    with pytest.raises(RuntimeError, match="one embedded store per process"):
        store.embedded(_ANALYTICS_DIR / "elsewhere", "other")


def test_literals_are_quoted() -> None:
    assert store.quote("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert store.quote(None) == "NULL"
    assert store.quote_list([]) == "(NULL)"


async def test_accepted_events_reach_the_store_once_even_when_copied_twice(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    token = make_token(tenant, "events:write")
    events = [
        event(event_id=f"e-{i}", user_id=f"u-{i % 3}", occurred_at=iso(T0)) for i in range(10)
    ]
    for body in (batch(*events), batch(*events[:5], events[0])):  # repeats are duplicates
        response = await attribution.post("/v1/events", json=body, headers=auth(token))
        assert response.status_code in (200, 201, 207), response.text
    await replicator(attribution_app).catch_up()
    ids = await system_of_record_ids(attribution_app, tenant)
    assert [row[0] for row in analytic_events(attribution_app, tenant)] == ids
    # A crash after the copy but before the stamp: the events are copied again.
    async with attribution_app.state.sessionmaker() as session:
        await session.execute(
            update(Event).where(Event.tenant_id == tenant).values(analytics_seq=None)
        )
        await session.commit()
    assert await replicator(attribution_app).catch_up() == len(ids)
    assert analytic_events(attribution_app, tenant) == [[i, 1] for i in ids]
    async with attribution_app.state.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count()).select_from(Event).where(Event.analytics_seq.is_(None))
        )
    assert pending == 0


async def test_a_funnel_reflects_events_as_soon_as_they_are_answered(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    write = make_token(tenant, "events:write")
    read = make_token(tenant, "reports:read")
    query = {
        "steps": [{"type": "view"}, {"type": "click"}],
        "from": iso(T0 - dt.timedelta(days=1)),
        "to": iso(T0 + dt.timedelta(days=1)),
    }
    seen = []
    for i in range(3):
        body = batch(
            event(user_id=f"u-{i}", occurred_at=iso(T0)),
            event(type="click", user_id=f"u-{i}", occurred_at=iso(T0 + dt.timedelta(seconds=1))),
        )
        response = await attribution.post("/v1/events", json=body, headers=auth(write))
        assert response.status_code in (200, 201, 207), response.text
        answer = await attribution.post("/v1/funnels", json=query, headers=auth(read))
        assert answer.status_code == 200, answer.text
        seen.append([step["users"] for step in answer.json()["steps"]])
    assert seen == [[1, 1], [2, 2], [3, 3]]


async def test_startup_copies_what_the_store_missed(attribution_app: FastAPI, tenant: str) -> None:
    """Events committed but never copied (the process died first) are copied at startup."""
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    async with attribution_app.state.sessionmaker() as session:
        session.add_all(
            Event(
                tenant_id=tenant,
                event_id=f"lost-{i}",
                type="view",
                occurred_at=T0,
                user_id="u-lost",
                content_id="c-1",
            )
            for i in range(4)
        )
        await session.commit()
    settings = attribution_app.state.settings
    restarted = await start_replication(settings, attribution_app.state.sessionmaker)
    assert restarted.store.database == replicator(attribution_app).store.database
    assert [row[0] for row in analytic_events(attribution_app, tenant)] == [
        f"lost-{i}" for i in range(4)
    ]


def test_several_workers_need_a_clickhouse_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTRIBUTION_CLICKHOUSE_URL", raising=False)
    monkeypatch.delenv("ATTRIBUTION_ANALYTICS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "attribution", "--workers", "2"])
    assert result.exit_code == 2
    assert "ATTRIBUTION_CLICKHOUSE_URL" in result.output


# --------------------------------------------------------------------------- funnels


_TYPES = ("impression", "view", "click")
_STEP = st.fixed_dictionaries(
    {"type": st.sampled_from((*_TYPES, "order"))},
    optional={
        "filters": st.one_of(
            st.fixed_dictionaries({"content_id": st.sampled_from(("c1", "c2"))}),
            st.fixed_dictionaries({"product_id": st.sampled_from(funnel_data.PRODUCTS)}),
        )
    },
)
_EVENT = st.tuples(
    st.integers(0, 3),  # user
    st.integers(0, 11),  # slot of 10 s: few enough that times are often shared
    st.sampled_from((0, 0, 1)),  # microseconds beside the slot
    st.sampled_from(_TYPES),
    st.sampled_from((*funnel_data.CONTENTS, funnel_data.UNKNOWN_CONTENT)),
    st.sampled_from((None, None, "instagram")),  # the event's own platform, else its account's
)
_ORDER = st.tuples(
    st.integers(0, 3),  # buyer
    st.integers(0, 11),  # slot of its paid time
    st.sampled_from((0, 0, 1)),  # microseconds beside the slot
    st.lists(st.sampled_from(funnel_data.PRODUCTS), min_size=1, max_size=2, unique=True),
    st.sampled_from(("paid", "paid", "cancelled", "created")),  # its fate
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(_EVENT, min_size=1, max_size=14),
    orders=st.lists(_ORDER, max_size=3),
    steps=st.lists(_STEP, min_size=2, max_size=4),
    window=st.sampled_from((0, 10, 25, 60, 200)),
    span=st.tuples(st.integers(0, 6), st.integers(1, 12)),
    breakdown=st.sampled_from((None, "platform", "content_id", "content_kind")),
    distinct=st.booleans(),
)
async def test_funnels_from_clickhouse_agree_with_the_brute_force_reference(
    attribution_app: FastAPI,
    attribution: httpx.AsyncClient,
    catalog: httpx.AsyncClient,
    make_token: TokenFactory,
    rows: list[tuple[int, int, int, str, str, str | None]],
    orders: list[tuple[int, int, int, list[str], str]],
    steps: list[dict[str, Any]],
    window: int,
    span: tuple[int, int],
    breakdown: str | None,
    distinct: bool,
) -> None:
    """Equal times and events matching two steps included; users are counted inside
    ClickHouse unless two of their useful events share a time and one matches two steps.

    Orders are posted through the API after the events (their views and clicks are the
    touches of their last-touch credits); some stay created, some are cancelled.
    """
    tenant = new_tenant()
    token = make_token(tenant, "admin")
    await funnel_data.put_catalog(catalog, attribution, token)
    t0 = T0
    events = []
    for i, (user, slot, micros, kind, content, platform) in enumerate(rows):
        # `distinct`: every event its own microsecond, so no user has two at one time.
        at = t0 + dt.timedelta(seconds=10 * slot, microseconds=i if distinct else micros)
        body: dict[str, Any] = {
            "event_id": f"e{i}",
            "type": kind,
            "occurred_at": iso(at),
            "user_id": f"u{user}",
            "content_id": content,
        }
        if platform is not None:
            body["platform"] = platform
        events.append(body)
    await funnel_data.post_events(attribution, auth(token), events)
    items = [
        funnel_data.Item(
            e["user_id"],
            funnel_data.to_us(dt.datetime.fromisoformat(e["occurred_at"])),
            e["type"],
            funnel_data.event_dims(e),
            e["event_id"],
        )
        for e in events
    ]
    events_by_id = {e["event_id"]: e for e in events}
    headers = auth(token)
    for j, (buyer, slot, micros, products, fate) in enumerate(orders):
        at = t0 + dt.timedelta(
            seconds=10 * slot, microseconds=len(rows) + j if distinct else micros
        )
        order_id, buyer_user = f"o{j}", f"u{buyer}"
        first = "created" if fate == "created" else "paid"
        await funnel_data.post_order(
            attribution, headers, order_id, first, at, buyer_user, products
        )
        if fate == "cancelled":
            later = at + dt.timedelta(seconds=5)
            await funnel_data.post_order(
                attribution, headers, order_id, "cancelled", later, buyer_user, products
            )
        item = await funnel_data.order_item(attribution, headers, order_id, events_by_id)
        if item is not None:
            items.append(item)
    start, length = span
    query: dict[str, Any] = {
        "steps": steps,
        "from": iso(t0 + dt.timedelta(seconds=10 * start)),
        "to": iso(t0 + dt.timedelta(seconds=10 * (start + length))),
        "window_seconds": window or 1,
    }
    if breakdown is not None:
        query["breakdown"] = breakdown
    response = await attribution.post(
        "/v1/funnels", json=query, headers=auth(make_token(tenant, "reports:read"))
    )
    assert response.status_code == 200, response.text
    assert response.json() == funnel_data.reference(items, query), query
    plan = plan_funnel(tenant, FunnelQuery.model_validate(query))
    assert plan.plain  # counted by the fold statement
    if distinct or len({s["type"] for s in steps}) == len(steps):
        # Nothing was left to the engine: ClickHouse gave the whole answer (equal times
        # too, when no event can match two steps).
        assert _left_to_the_engine(attribution_app, plan) == []


def _left_to_the_engine(app: FastAPI, plan: FunnelPlan) -> list[Any]:
    """The users whose rows the counting statement hands back to the engine."""
    rows = replicator(app).store.rows(funnel_counts_statement(plan, _contents(plan)))
    n = len(plan.steps)
    return [user for keyed, _, *figures in rows if not keyed for user in figures[2 * n - 1]]


def _contents(plan: FunnelPlan) -> dict[tuple[str, str], list[str]]:
    """The content filters' ids (the catalog's: each content id is its own value)."""
    return {
        (key, value): [value]
        for filters in (plan.filters, *(s.filters for s in plan.steps))
        for key, value in filters.items()
    }


class _Services(NamedTuple):
    """Both services, the app behind attribution's client, and a tenant with its tokens."""

    attribution_app: FastAPI
    attribution: httpx.AsyncClient
    catalog: httpx.AsyncClient
    make_token: TokenFactory
    tenant: str


@pytest.fixture
def services(
    attribution_app: FastAPI,
    attribution: httpx.AsyncClient,
    catalog: httpx.AsyncClient,
    make_token: TokenFactory,
    tenant: str,
) -> _Services:
    return _Services(attribution_app, attribution, catalog, make_token, tenant)


async def test_breakdowns_from_an_order_first_step_agree_with_the_reference(
    services: _Services,
) -> None:
    """An order has one breakdown value per last-touch credit: each value's funnel keeps
    step 1 on the orders having it (ClickHouse counts them; the engine the tied users)."""
    attribution_app, attribution, catalog, make_token, tenant = services
    with funnel_data.fixed_clock():
        token = make_token(tenant, "admin")
        world = await funnel_data.build_world(
            random.Random(7), catalog, attribution, tenant, token, users=8, orders=14
        )
        # Two orders of one buyer paid at one instant: with two order steps, a user left
        # to the engine's tie-aware search.
        events_by_id = {e["event_id"]: e for e in world.events}
        tied_at = world.at(funnel_data.SLOTS - 2)
        for order_id, products in (("tie-a", ["p1"]), ("tie-b", ["p2"])):
            await funnel_data.post_order(
                attribution, world.headers, order_id, "paid", tied_at, "u1", products
            )
            item = await funnel_data.order_item(attribution, world.headers, order_id, events_by_id)
            assert item is not None
            world.items.append(item)
        seen = 0
        order_first: tuple[list[dict[str, Any]], ...] = (
            [{"type": "order"}, {"type": "click"}],
            [{"type": "order"}, {"type": "order"}],
            [{"type": "order", "filters": {"product_id": "p1"}}, {"type": "view"}],
        )
        for steps in order_first:
            for breakdown in funnel_data.BREAKDOWNS:
                query = {
                    "steps": steps,
                    "from": iso(world.at(0)),
                    "to": iso(world.at(funnel_data.SLOTS + 1)),
                    "window_seconds": 250,
                    "breakdown": breakdown,
                }
                plan = plan_funnel(tenant, FunnelQuery.model_validate(query))
                assert plan.plain  # counted by the fold statement
                response = await attribution.post("/v1/funnels", json=query, headers=auth(token))
                assert response.status_code == 200, response.text
                assert response.json() == funnel_data.reference(world.items, query), query
                seen += len(response.json()["breakdown"])
                if steps[1]["type"] == "order":
                    assert _left_to_the_engine(attribution_app, plan) != []
        assert seen > 0  # some orders have credits, so values


async def test_the_app_answers_funnels_and_paths_from_the_analytic_store(
    attribution_app: FastAPI,
) -> None:
    served = Request({"type": "http", "app": attribution_app})
    plain = Request({"type": "http", "app": FastAPI()})  # an app without a chooser
    async with attribution_app.state.read_sessionmaker() as session:
        assert isinstance(funnel_source(served, session), ClickHouseFunnelSource)
        assert isinstance(path_source(served, session), ClickHousePathSource)
        assert isinstance(funnel_source(plain, session), SqlFunnelSource)
        assert isinstance(path_source(plain, session), SqlPathSource)
        assert isinstance(_Reports(served, session, "t").viewers(), ClickHouseViewers)
        assert isinstance(_Reports(plain, session, "t").viewers(), SqlViewers)


async def test_distinct_viewers_from_the_store_agree_with_a_brute_force_count(
    attribution_app: FastAPI, attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    """Per content and per ad, in a range, even with every row copied twice into the store
    (read without FINAL: a second copy is the same user) and another tenant's views beside."""
    rng = random.Random(7)
    start, end = T0, T0 + dt.timedelta(hours=6)
    events = [
        event(
            type=rng.choice(["view", "view", "click", "like"]),
            user_id=f"u-{rng.randrange(40)}",
            content_id=rng.choice([None, "c-1", "c-2", "c-3"]),
            ad_id=rng.choice([None, None, "a-1", "a-2"]),
            occurred_at=iso(start + dt.timedelta(minutes=rng.randrange(-60, 7 * 60))),
        )
        for _ in range(400)
    ]
    for tenant_id, posted in ((tenant, events), (new_tenant(), events[:100])):
        token = make_token(tenant_id, "events:write")
        for i in range(0, len(posted), 100):
            answer = await attribution.post(
                "/v1/events", json=batch(*posted[i : i + 100]), headers=auth(token)
            )
            assert answer.status_code in (200, 201, 207), answer.text
    async with attribution_app.state.sessionmaker() as session:
        await session.execute(
            update(Event).where(Event.tenant_id == tenant).values(analytics_seq=None)
        )
        await session.commit()
    await replicator(attribution_app).catch_up()  # a second copy of every row
    counter = ClickHouseViewers(replicator(attribution_app))
    accepted = (await stored_events(attribution_app, tenant)).values()
    assert len(accepted) > 250  # (the refused ones, such as a like of no content, do not count)
    for key in ("content_id", "ad_id"):
        expected: dict[str, set[str]] = {}
        for e in accepted:
            value = getattr(e, key)
            if e.type == "view" and value and start <= e.occurred_at < end:
                expected.setdefault(value, set()).add(e.user_id)
        brute = {value: len(users) for value, users in expected.items()}
        assert len(brute) >= 2
        assert await counter.unique_viewers(tenant, key, start, end) == brute
        async with attribution_app.state.read_sessionmaker() as session:
            assert await SqlViewers(session).unique_viewers(tenant, key, start, end) == brute
    with pytest.raises(ValueError, match="not 'user_id'"):
        unique_viewers_statement(tenant, "user_id", start, end)


async def _streams(
    source: SqlFunnelSource | ClickHouseFunnelSource, plan: FunnelPlan
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async for users in source.item_streams(plan):
        for user_id, items in users:
            assert user_id not in out  # one stream per user
            out[user_id] = items
    return out


async def test_user_streams_from_clickhouse_equal_those_of_the_sql_source(
    services: _Services,
) -> None:
    """The modes' input: for random queries of every mode (strict reading every item, held
    dimensions, exclusions, catalog filters and breakdowns), each user's stream read from
    ClickHouse, sorted there, is the SQL source's, item for item and in the same order
    (equal times by id), for every user able to start a chain (the only ones it reads)."""
    attribution_app, attribution, catalog, make_token, tenant = services
    from tests.attribution.test_funnel_modes_api import with_mode
    from tests.attribution.test_funnel_modes_combined_api import with_more_modes

    with funnel_data.fixed_clock():
        world = await funnel_data.build_world(
            random.Random(11), catalog, attribution, tenant, make_token(tenant, "admin"), events=150
        )
        rng = random.Random(5)
        compared = strict = held = 0
        async with attribution_app.state.read_sessionmaker() as session:
            for _ in range(40):
                query = with_more_modes(rng, with_mode(rng, funnel_data.random_query(rng, world)))
                plan = plan_funnel(tenant, FunnelQuery.model_validate(query))
                from_sql = await _streams(SqlFunnelSource(session), plan)
                clickhouse = ClickHouseFunnelSource(session, attribution_app.state.analytics)
                from_clickhouse = await _streams(clickhouse, plan)
                starts = (1 << len(plan.steps)) - 1 if plan.order == "unordered" else 1
                end_us = int(plan.end.timestamp() * 1_000_000)
                able = {
                    user: items
                    for user, items in from_sql.items()
                    if any(item[1] & starts and item[0] < end_us for item in items)
                }
                assert from_clickhouse == able, query
                compared += len(able)
                strict += plan.order == "strict"
                held += bool(plan.hold)
    assert compared > 100
    assert strict > 0
    assert held > 0
