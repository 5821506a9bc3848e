"""Event ingest: per-event validation, idempotency, the rejected store, limits, auth, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import time_machine
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import event as event_listener
from sqlalchemy import text

from services.attribution.events.parsing import parse_batch
from services.attribution.events.repository import ROW_COLUMNS
from services.attribution.events.schemas import EventIn
from services.attribution.events.validation import (
    EVENT_FIELDS,
    ClickContext,
    EventCheck,
    EventRow,
    clicks_to_resolve,
    partition_batch,
    validate_event,
)
from services.attribution.models import Event
from shared.errors import BadRequest, PayloadTooLarge, UnprocessableEntity
from shared.vocabulary import EVENT_TYPES, PLATFORMS
from tests.attribution import factories
from tests.attribution.conftest import LateCalls
from tests.attribution.factories import (
    batch,
    events_counter,
    iso,
    stored_events,
    stored_rejections,
)
from tests.conftest import TokenFactory, auth

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
PROBLEM_JSON = "application/problem+json"


def event(**fields: Any) -> dict[str, Any]:
    """A valid `view` event at NOW - 1 min (past for any server clock); keywords override."""
    return factories.event(**{"occurred_at": iso(NOW - dt.timedelta(minutes=1)), **fields})


raw = event  # the same builder, for the pure functions


def check(value: Any, **kwargs: Any) -> EventCheck:
    return validate_event(value, now=NOW, max_future_seconds=300, **kwargs)


# --- one event, no database -----------------------------------------------------------------


def test_a_valid_event_becomes_a_row() -> None:
    result = check(
        raw(
            event_id="e:1.a_b-c",
            type="click",
            occurred_at="2024-06-01T19:59:00+08:00",
            platform="douyin",
            properties={"watch_seconds": 12.5},
            click_id="ck1",
            ad_id="ad1",
            product_id="p1",
            session_id="s1",
        )
    )
    assert result.errors == []
    assert type(result.row) is EventRow
    assert result.row._asdict() == {
        "event_id": "e:1.a_b-c",
        "type": "click",
        "occurred_at": dt.datetime(2024, 6, 1, 11, 59, tzinfo=dt.UTC),
        "user_id": "u-1",
        "content_id": "c-1",
        "product_id": "p1",
        "ad_id": "ad1",
        "click_id": "ck1",
        "session_id": "s1",
        "platform": "douyin",
        "properties": '{"watch_seconds":12.5}',  # serialised once, stored as is
    }


def test_a_row_holds_every_events_column_but_the_tenant_and_the_arrival_time() -> None:
    # analytics_seq is the replication's own stamp, set after the event is stored.
    columns = {column.name for column in Event.__table__.columns}
    assert set(ROW_COLUMNS) == columns - {"tenant_id", "received_at", "analytics_seq"}
    assert len(ROW_COLUMNS) == len(columns) - 3


@pytest.mark.parametrize(
    ("overrides", "drop", "reason"),
    [
        ({}, "event_id", "`event_id` is required"),
        ({}, "type", "`type` is required"),
        ({}, "occurred_at", "`occurred_at` is required"),
        ({}, "user_id", "`user_id` is required"),
        ({}, "content_id", "`content_id` is required for type `view`"),
        ({"type": "add_to_cart"}, None, "`product_id` is required for type `add_to_cart`"),
        ({"type": "purchase"}, None, "`type` 'purchase' is not one of"),
        ({"type": 3}, None, "`type` 3 is not one of"),
        ({"occurred_at": "2024-06-01T11:00:00"}, None, "has no timezone offset"),
        ({"occurred_at": "2024-06-01"}, None, "has no timezone offset"),
        ({"occurred_at": "yesterday"}, None, "is not an ISO-8601 timestamp"),
        ({"occurred_at": 1717236000}, None, "`occurred_at` must be an ISO-8601 string"),
        ({"occurred_at": "0001-01-01T00:00:00+01:00"}, None, "is out of range"),
        ({"occurred_at": "1970-01-01T07:59:59+08:00"}, None, "is before 1970-01-01T00:00:00Z"),
        ({"occurred_at": iso(NOW + dt.timedelta(minutes=6))}, None, "s in the future"),
        ({"properties": {"blob": "x" * 4100}}, None, "bytes serialised; at most 4096"),
        ({"properties": ["a"]}, None, "`properties` must be a JSON object (got array)"),
        ({"properties": {"k": "a\x00b"}}, None, "must not contain NUL"),
        ({"colour": "red"}, None, "unknown field(s) `colour`"),
        ({"event_id": "has space"}, None, "`event_id` must be 1–128 characters"),
        ({"event_id": "x" * 129}, None, "`event_id` must be 1–128 characters"),
        ({"event_id": ""}, None, "`event_id` must be 1–128 characters"),
        ({"event_id": "a\n"}, None, "`event_id` must be 1–128 characters"),
        ({"event_id": 12}, None, "`event_id` must be a string (got number 12)"),
        ({"user_id": "ü"}, None, "`user_id` must be 1–128 characters"),
        ({"content_id": "a/b"}, None, "`content_id` must be 1–128 characters"),
        ({"click_id": True}, None, "`click_id` must be a string (got boolean True)"),
        ({"session_id": "a b"}, None, "`session_id` must be 1–128"),
        ({"platform": "myspace"}, None, "`platform` 'myspace' is not one of"),
    ],
)
def test_each_invalid_event_is_refused_with_a_reason(
    overrides: dict[str, Any], drop: str | None, reason: str
) -> None:
    value = raw(**overrides)
    if drop is not None:
        value.pop(drop)
    result = check(value)
    assert result.row is None
    assert any(reason in error for error in result.errors), result.errors


def test_every_problem_of_an_event_is_reported() -> None:
    result = check({"event_id": "a b", "type": "nope", "occurred_at": "2024-06-01T11:00:00"})
    assert result.row is None
    assert len(result.errors) == 4  # event_id, type, occurred_at, user_id


@pytest.mark.parametrize("value", [None, 1, "event", [], [{"event_id": "x"}]])
def test_an_event_must_be_an_object(value: Any) -> None:
    assert check(value).errors[0].startswith("an event must be a JSON object")


def test_follow_needs_no_content_and_add_to_cart_needs_only_a_product() -> None:
    assert check(raw(type="follow", content_id=None)).row is not None
    assert check(raw(type="add_to_cart", content_id=None, product_id="p1")).row is not None


def test_five_minutes_ahead_is_accepted_and_properties_at_the_limit_too() -> None:
    assert check(raw(occurred_at=iso(NOW + dt.timedelta(seconds=300)))).row is not None
    padding = "x" * (4096 - len(orjson.dumps({"k": ""})))
    assert len(orjson.dumps({"k": padding})) == 4096
    assert check(raw(properties={"k": padding})).row is not None
    assert check(raw(properties={"k": padding + "x"})).row is None


def test_null_optional_fields_count_as_absent() -> None:
    value = raw()
    value.update({"ad_id": None, "platform": None, "properties": None})
    assert check(value).row is not None


def test_an_event_inherits_content_product_and_ad_from_a_known_click() -> None:
    clicks = {"ck1": ClickContext("c-9", "p-9", "ad-9")}
    row = check(raw(content_id=None, click_id="ck1"), clicks=clicks).row
    assert row is not None
    assert (row.content_id, row.product_id, row.ad_id) == ("c-9", "p-9", "ad-9")
    # What the event carries itself wins.
    row = check(raw(content_id=None, click_id="ck1", product_id="p-1"), clicks=clicks).row
    assert row is not None
    assert (row.content_id, row.product_id, row.ad_id) == ("c-9", "p-1", "ad-9")
    # An event with its own content inherits nothing.
    row = check(raw(click_id="ck1"), clicks=clicks).row
    assert row is not None
    assert (row.content_id, row.product_id, row.ad_id) == ("c-1", None, None)
    # add_to_cart gets its product from the click.
    row = check(raw(type="add_to_cart", content_id=None, click_id="ck1"), clicks=clicks).row
    assert row is not None
    assert row.product_id == "p-9"
    # An unknown click gives nothing.
    assert check(raw(content_id=None, click_id="ck2"), clicks=clicks).row is None


def test_the_hand_validator_agrees_with_the_documented_schema() -> None:
    """EventIn documents the wire format; the hand validator must accept the same events."""
    # The interactions' conditional fields are documented in prose; give each what it needs.
    needs = {"reply": {"reply_to": "c", "account_id": "a"}, "dm": {"account_id": "a"}}
    needs["dm_reply"] = {"reply_to": "d"}
    samples: list[dict[str, Any]] = [
        raw(type=t, product_id="p1", **needs.get(t, {})) for t in sorted(EVENT_TYPES)
    ]
    samples += [raw(platform=p) for p in sorted(PLATFORMS)]
    samples += [
        raw(type="other"),
        raw(platform="nope"),
        raw(event_id="a b"),
        raw(occurred_at="2024-06-01T11:00:00"),
        raw(extra=1),
        raw(properties=[1]),
        raw(ad_id="x" * 129),
    ]
    for sample in samples:
        try:
            EventIn.model_validate(sample)
            documented = True
        except ValidationError:
            documented = False
        assert (check(sample).row is not None) == documented, sample


# --- a batch, no database ---------------------------------------------------------------------


def test_partition_deduplicates_within_the_batch_and_keeps_order() -> None:
    a, b = raw(event_id="a"), raw(event_id="b")
    bad = raw(event_id="bad", type="nope")
    result = partition_batch([a, b, dict(a), bad, dict(b)], now=NOW)
    assert result.received == 5
    assert [row.event_id for row in result.rows] == ["a", "b"]
    assert result.repeated_types == ["view", "view"]
    assert [(r.index, r.event_id, r.type_label) for r in result.rejected] == [(3, "bad", "invalid")]


def test_partition_inherits_only_from_earlier_clicks_of_the_batch() -> None:
    view_before = raw(event_id="v0", content_id=None, click_id="ck1")
    click = raw(event_id="k1", type="click", click_id="ck1", content_id="c-5", ad_id="ad-5")
    view_after = raw(event_id="v1", content_id=None, click_id="ck1")
    result = partition_batch([view_before, click, view_after], now=NOW)
    assert [row.event_id for row in result.rows] == ["k1", "v1"]
    assert result.rows[1].content_id == "c-5"
    assert result.rows[1].ad_id == "ad-5"
    assert [r.index for r in result.rejected] == [0]


def test_partition_uses_stored_clicks_and_an_invalid_click_gives_nothing() -> None:
    broken_click = raw(event_id="k1", type="click", click_id="ck1", content_id="c-5", user_id="?")
    view = raw(event_id="v1", content_id=None, click_id="ck1")
    result = partition_batch([broken_click, view], now=NOW)
    assert result.rows == []
    result = partition_batch(
        [broken_click, view], now=NOW, stored_clicks={"ck1": ClickContext("c-7", None, None)}
    )
    assert [(row.event_id, row.content_id) for row in result.rows] == [("v1", "c-7")]


def test_clicks_to_resolve_takes_click_ids_of_events_without_content() -> None:
    events = [
        raw(content_id=None, click_id="ck1"),
        raw(click_id="ck2"),
        raw(content_id=None, click_id="bad id"),
        raw(content_id=None),
        "not an event",
    ]
    assert clicks_to_resolve(events) == {"ck1"}


def test_parse_batch_checks_the_shape() -> None:
    assert parse_batch(b'{"events": [1, {}]}', max_events=10) == [1, {}]
    with pytest.raises(BadRequest):
        parse_batch(b'{"events": [', max_events=10)
    for body in (
        b"[]",
        b'{"event": []}',
        b'{"events": {}}',
        b'{"events": []}',
        b'{"events": [], "x": 1}',
    ):
        with pytest.raises(UnprocessableEntity):
            parse_batch(body, max_events=10)
    with pytest.raises(PayloadTooLarge):
        parse_batch(orjson.dumps({"events": [{}] * 11}), max_events=10)


# --- over HTTP, on both databases ------------------------------------------------------------


@pytest.fixture
def writer(make_token: TokenFactory, tenant: str) -> dict[str, str]:
    return auth(make_token(tenant, "events:write"))


@pytest.fixture
def writer_at_now(make_token: TokenFactory, tenant: str) -> Iterator[dict[str, str]]:
    """The clock stopped at NOW for the test (the server's too), and a token minted then."""
    with time_machine.travel(NOW, tick=False):
        yield auth(make_token(tenant, "events:write"))


async def post(client: httpx.AsyncClient, headers: dict[str, str], body: Any) -> httpx.Response:
    return await client.post("/v1/events", json=body, headers=headers)


async def test_a_mixed_batch_stores_exactly_the_valid_events(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    writer_at_now: dict[str, str],
) -> None:
    writer = writer_at_now
    earlier = event(event_id="old-1")
    assert (await post(attribution, writer, batch(earlier))).json()["accepted"] == 1

    good = [
        event(event_id="g-1", properties={"watch_seconds": 12.5}, platform="tiktok"),
        event(event_id="g-2", type="impression", occurred_at="2024-05-01T20:00:00+08:00"),
        event(event_id="g-3", type="add_to_cart", content_id=None, product_id="p-1"),
        event(event_id="g-4", type="follow", content_id=None),
    ]
    invalid = [
        event(event_id="bad-missing", user_id=None),
        event(event_id="bad-type", type="purchase"),
        event(event_id="bad-naive", occurred_at="2024-05-01T12:00:00"),
        event(event_id="bad-future", occurred_at=iso(NOW + dt.timedelta(minutes=10))),
        event(event_id="bad-props", properties={"blob": "x" * 5000}),
        event(event_id="bad-unknown", colour="red"),
        event(event_id="bad id"),
        event(event_id="bad-platform", platform="myspace"),
        event(event_id="bad-cart", type="add_to_cart", content_id=None),
    ]
    events = [
        good[0],
        invalid[0],
        good[1],
        dict(good[0]),  # repeated in the batch
        invalid[1],
        earlier,  # stored before
        invalid[2],
        invalid[3],
        good[2],
        invalid[4],
        invalid[5],
        invalid[6],
        good[3],
        invalid[7],
        invalid[8],
    ]
    response = await post(attribution, writer, batch(*events))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["received"] == len(events)
    assert answer["accepted"] == 4
    assert answer["duplicates"] == 2
    rejected_indexes = [i for i, e in enumerate(events) if e in invalid]
    assert [r["index"] for r in answer["rejected"]] == rejected_indexes
    assert [r["event_id"] for r in answer["rejected"]] == [e["event_id"] for e in invalid]
    assert all(
        r["errors"] and all(isinstance(m, str) for m in r["errors"]) for r in answer["rejected"]
    )

    stored = await stored_events(attribution_app, tenant)
    assert set(stored) == {"old-1", "g-1", "g-2", "g-3", "g-4"}
    assert stored["g-1"].properties == {"watch_seconds": 12.5}
    assert stored["g-1"].platform == "tiktok"
    assert stored["g-2"].occurred_at == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert stored["g-3"].product_id == "p-1"
    assert stored["g-3"].content_id is None

    kept = await stored_rejections(attribution_app, tenant)
    assert [(r.batch_index, r.event_id) for r in kept] == [
        (i, events[i]["event_id"]) for i in rejected_indexes
    ]
    assert [r.payload for r in kept] == invalid
    assert [r.errors for r in kept] == [r["errors"] for r in answer["rejected"]]


async def test_a_batch_where_every_event_is_rejected_is_422_and_still_kept(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    writer: dict[str, str],
) -> None:
    events = [event(type="nope"), "not an object", {"event_id": "x\x00y"}]
    response = await post(attribution, writer, batch(*events))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert (problem["received"], problem["accepted"], problem["duplicates"]) == (3, 0, 0)
    assert [r["index"] for r in problem["rejected"]] == [0, 1, 2]
    assert problem["errors"]
    assert all(e["loc"][:2] == ["body", "events"] for e in problem["errors"])
    kept = await stored_rejections(attribution_app, tenant)
    assert [r.batch_index for r in kept] == [0, 1, 2]
    assert kept[1].payload == "not an object"
    assert kept[2].event_id == "x\ufffdy"  # PostgreSQL cannot store U+0000


async def test_a_full_batch_is_one_insert_and_absent_properties_are_sql_null(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    writer: dict[str, str],
) -> None:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = attribution_app.state.engine.sync_engine
    event_listener.listen(engine, "before_cursor_execute", seen)
    try:
        events = [
            event(event_id=f"f-{i:04d}", properties={"i": i} if i % 2 else None)
            for i in range(1000)
        ]
        response = await post(attribution, writer, batch(*events))
    finally:
        event_listener.remove(engine, "before_cursor_execute", seen)
    assert response.json()["accepted"] == 1000
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO EVENTS")]
    assert len(inserts) == 1
    async with attribution_app.state.sessionmaker() as session:
        nulls = await session.scalar(
            text("SELECT count(*) FROM events WHERE tenant_id = :t AND properties IS NULL"),
            {"t": tenant},
        )
    assert nulls == 500


async def test_a_batch_of_only_duplicates_is_a_success(
    attribution: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    body = batch(event(), event())
    assert (await post(attribution, writer, body)).json()["accepted"] == 2
    response = await post(attribution, writer, body)
    assert response.status_code == 200
    assert response.json() == {"received": 2, "accepted": 0, "duplicates": 2, "rejected": []}


async def test_limits_are_413(attribution: httpx.AsyncClient, writer: dict[str, str]) -> None:
    too_many = batch(*[event(event_id=f"n-{i}") for i in range(1001)])
    response = await post(attribution, writer, too_many)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON

    big = batch(*[event(event_id=f"b-{i}", properties={"p": "x" * 3000}) for i in range(400)])
    assert len(orjson.dumps(big)) > 1024 * 1024
    response = await post(attribution, writer, big)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_JSON

    # Without a Content-Length (chunked), the bytes actually read are limited.
    body = orjson.dumps(big)

    async def chunks() -> Any:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await attribution.post("/v1/events", content=chunks(), headers=writer)
    assert response.status_code == 413

    # A declared Content-Length over the limit is refused before reading.
    response = await attribution.post(
        "/v1/events",
        content=b"{}",
        headers={**writer, "Content-Length": str(2 * 1024 * 1024)},
    )
    assert response.status_code == 413


async def test_malformed_json_is_400_and_a_wrong_shape_422(
    attribution: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    response = await attribution.post(
        "/v1/events",
        content=b'{"events": [',
        headers={**writer, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["status"] == 400
    assert problem["type"].endswith("/malformed-json")
    assert problem["detail"].startswith("The request body is not valid JSON")
    bodies: list[Any] = [[], {"events": []}, {"events": "x"}, {"items": [event()]}]
    for body in bodies:
        response = await post(attribution, writer, body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == PROBLEM_JSON


async def test_auth(attribution: httpx.AsyncClient, make_token: Any, tenant: str) -> None:
    response = await attribution.post("/v1/events", json=batch(event()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    wrong = auth(make_token(tenant, "orders:write", "reports:read"))
    assert (await post(attribution, wrong, batch(event()))).status_code == 403
    assert (await attribution.get("/v1/events/rejected")).status_code == 401
    assert (await attribution.get("/v1/events/rejected", headers=wrong)).status_code == 403


async def test_tenants_are_isolated(
    attribution: httpx.AsyncClient, attribution_app: FastAPI, make_token: Any
) -> None:
    a, b = "tenant-a", "tenant-b"
    token_a, token_b = auth(make_token(a, "events:write")), auth(make_token(b, "events:write"))
    same = event(event_id="shared-id")
    assert (await post(attribution, token_a, batch(same, event(type="bad")))).json()[
        "accepted"
    ] == 1
    assert (await post(attribution, token_b, batch(same))).json()["accepted"] == 1
    assert set(await stored_events(attribution_app, a)) == {"shared-id"}
    assert set(await stored_events(attribution_app, b)) == {"shared-id"}

    listed_a = (await attribution.get("/v1/events/rejected", headers=token_a)).json()
    listed_b = (await attribution.get("/v1/events/rejected", headers=token_b)).json()
    assert len(listed_a["items"]) == 1
    assert listed_b == {"items": [], "next_cursor": None}


async def test_concurrent_overlapping_batches_store_each_event_once(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    writer: dict[str, str],
) -> None:
    events = [event(event_id=f"c-{i:03d}") for i in range(200)]
    bodies = [batch(*events[i * 20 :], *events[: i * 20]) for i in range(5)]  # orders differ
    answers = await asyncio.gather(*(post(attribution, writer, body) for body in bodies))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert sum(a.json()["accepted"] for a in answers) == 200
    assert sum(a.json()["duplicates"] for a in answers) == 800
    assert len(await stored_events(attribution_app, tenant)) == 200


async def test_content_is_inherited_from_a_stored_or_earlier_click(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    writer: dict[str, str],
) -> None:
    click = event(
        event_id="k-1",
        type="click",
        click_id="ck-1",
        content_id="vid-1",
        ad_id="ad-1",
        product_id="p-1",
    )
    assert (await post(attribution, writer, batch(click))).json()["accepted"] == 1

    later = [
        event(event_id="v-1", type="add_to_cart", content_id=None, click_id="ck-1"),
        event(event_id="k-2", type="click", click_id="ck-2", content_id="vid-2"),
        event(event_id="v-2", content_id=None, click_id="ck-2", ad_id="own-ad"),
        event(event_id="v-3", content_id=None, click_id="ck-unknown"),
    ]
    answer = (await post(attribution, writer, batch(*later))).json()
    assert answer["accepted"] == 3
    assert [r["index"] for r in answer["rejected"]] == [3]
    stored = await stored_events(attribution_app, tenant)
    v1, v2 = stored["v-1"], stored["v-2"]
    assert (v1.content_id, v1.product_id, v1.ad_id, v1.click_id) == ("vid-1", "p-1", "ad-1", "ck-1")
    assert (v2.content_id, v2.product_id, v2.ad_id) == ("vid-2", None, "own-ad")


async def test_another_tenants_click_is_not_inherited(
    attribution: httpx.AsyncClient, make_token: Any
) -> None:
    token_a, token_b = (
        auth(make_token("ta", "events:write")),
        auth(make_token("tb", "events:write")),
    )
    click = event(type="click", click_id="ck-x", content_id="vid-1")
    assert (await post(attribution, token_a, batch(click))).status_code == 200
    response = await post(attribution, token_b, batch(event(content_id=None, click_id="ck-x")))
    assert response.status_code == 422


async def test_the_rejected_store_pages_in_arrival_order(
    attribution: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    first = [event(event_id=f"r-{i}", type="nope") for i in range(3)]
    second = [event(event_id=f"r-{i}", type="nope") for i in range(3, 5)]
    await post(attribution, writer, batch(*first))
    await post(attribution, writer, batch(event(), *second))
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await attribution.get("/v1/events/rejected", params=params, headers=writer)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["event_id"] for item in seen] == [f"r-{i}" for i in range(5)]
    assert [item["index"] for item in seen] == [0, 1, 2, 1, 2]
    item = seen[0]
    assert set(item) == {"id", "index", "event_id", "errors", "payload", "received_at"}
    assert item["payload"] == first[0]
    assert item["received_at"].endswith("Z")
    assert "`type` 'nope'" in item["errors"][0]

    bad = await attribution.get("/v1/events/rejected", params={"cursor": "!!"}, headers=writer)
    assert bad.status_code == 422
    bad = await attribution.get("/v1/events/rejected", params={"limit": 501}, headers=writer)
    assert bad.status_code == 422


async def test_metrics_count_outcomes_by_type(
    attribution: httpx.AsyncClient, writer: dict[str, str]
) -> None:
    before = {
        key: events_counter(*key)
        for key in [
            ("like", "accepted"),
            ("like", "duplicate"),
            ("share", "rejected"),
            ("invalid", "rejected"),
        ]
    }
    like = event(type="like")
    body = batch(like, dict(like), event(type="share", user_id=None), event(type="bogus"))
    assert (await post(attribution, writer, body)).status_code == 200
    assert events_counter("like", "accepted") - before["like", "accepted"] == 1
    assert events_counter("like", "duplicate") - before["like", "duplicate"] == 1
    assert events_counter("share", "rejected") - before["share", "rejected"] == 1
    assert events_counter("invalid", "rejected") - before["invalid", "rejected"] == 1
    text = (await attribution.get("/metrics")).text
    assert 'clipfunnel_events_received_total{outcome="accepted",type="like"}' in text


async def test_new_touches_go_to_the_late_data_hook(
    attribution: httpx.AsyncClient, writer: dict[str, str], late_data_calls: LateCalls
) -> None:
    calls = late_data_calls
    stored_view = event(event_id="t-0", type="view")
    await post(attribution, writer, batch(stored_view))
    calls.clear()
    body = batch(
        stored_view,  # a duplicate is not new
        event(event_id="t-1", type="click", click_id="ck-t"),
        event(event_id="t-2", type="view_complete"),
        event(event_id="t-3", type="live_enter"),
        event(event_id="t-4", type="impression"),
        event(event_id="t-5", type="like"),
    )
    await post(attribution, writer, body)
    assert len(calls) == 1
    touches = calls[0][1]
    assert sorted((t.event_id, t.type, t.click_id) for t in touches) == [
        ("t-1", "click", "ck-t"),
        ("t-2", "view_complete", None),
        ("t-3", "live_enter", None),
    ]
    assert all(t.occurred_at.tzinfo is not None and t.user_id == "u-1" for t in touches)
    calls.clear()
    await post(attribution, writer, batch(event(type="like")))
    assert calls == []


async def test_openapi_documents_the_events_api(attribution: httpx.AsyncClient) -> None:
    spec = (await attribution.get("/openapi.json")).json()
    post_op = spec["paths"]["/v1/events"]["post"]
    body = post_op["requestBody"]["content"]["application/json"]["schema"]
    item = body["properties"]["events"]["items"]
    assert set(item["properties"]) == EVENT_FIELDS
    assert set(item["required"]) == {"event_id", "type", "occurred_at", "user_id"}
    assert {"200", "400", "401", "403", "413", "422"} <= set(post_op["responses"])
    assert "IngestResult" in spec["components"]["schemas"]
    listing = spec["paths"]["/v1/events/rejected"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor"}


# --- the validator against the documented schema, over many doubtful events ---------------

_GOOD_ID = st.sampled_from(["a", "c-1", "x" * 128, "ck1", "e:1.a_b-c"])
_valid_events = st.fixed_dictionaries(
    {
        "event_id": _GOOD_ID,
        "type": st.sampled_from(sorted(EVENT_TYPES)),
        "occurred_at": st.sampled_from(["2024-06-01T11:00:00Z", "2024-05-01T03:00:00.5+08:00"]),
        "user_id": _GOOD_ID,
        "content_id": _GOOD_ID,
    },
    optional={
        "product_id": _GOOD_ID,
        "ad_id": _GOOD_ID,
        "click_id": _GOOD_ID,
        "session_id": _GOOD_ID,
        "platform": st.sampled_from(sorted(PLATFORMS)),
        "properties": st.just({"watch_seconds": 1.5}),
    },
)
_DROP = object()
# (field, value): set the field to a doubtful value, or drop it (_DROP).
_MUTATIONS = [
    *(("event_id", v) for v in ("x" * 129, "bad id", "", "é", 3, None, _DROP)),
    *(("type", v) for v in ("buy", None, 1, _DROP, "follow", "add_to_cart")),
    *(
        ("occurred_at", v)
        for v in (
            "2024-06-01T20:04:59+08:00",  # 4:59 ahead: accepted
            "2024-06-01T12:05:00Z",  # exactly 5 minutes ahead: accepted
            "2024-06-01T12:05:00.000001Z",  # just over
            "2024-06-01T12:00:00",  # naive
            "0001-01-01T00:00:00+01:00",  # out of range once in UTC
            "1969-12-31T23:59:59.999999Z",  # before the epoch: refused
            "1970-01-01T08:00:00+08:00",  # the epoch itself: accepted
            "yesterday",
            1717243200,
            _DROP,
        )
    ),
    *(("user_id", v) for v in ("bad id", 7, None, _DROP)),
    *(("content_id", v) for v in (None, _DROP, "bad id", 2)),
    *(("product_id", v) for v in (None, "bad id", "p-1")),
    *(("click_id", v) for v in ("ck1", "bad id", None)),
    *(("session_id", v) for v in ("", 5)),
    *(("platform", v) for v in ("myspace", 3, None)),
    *(("properties", v) for v in ({"s": "x" * 5000}, {"s": "\x00"}, [1], None, {})),
    ("extra", 1),  # an unknown field
]


# Rules of ingest that the schema does not state: the clock, what a type requires, the size
# and content of `properties`, and a timestamp sent as a string (the schema also parses epoch
# numbers).
_BEYOND_THE_SCHEMA = (
    "s in the future",
    "is required for type",
    "bytes serialised",
    "must not contain NUL",
    "`occurred_at` must be an ISO-8601 string",
)


@settings(max_examples=2000, deadline=None)
@given(
    event=_valid_events,
    mutations=st.lists(st.sampled_from(_MUTATIONS), max_size=3),
    known_click=st.booleans(),
)
def test_the_validator_accepts_what_the_documented_schema_accepts(
    event: dict[str, Any], mutations: list[tuple[str, Any]], known_click: bool
) -> None:
    for field, value in mutations:
        if value is _DROP:
            event.pop(field, None)
        else:
            event[field] = value
    clicks = {"ck1": ClickContext("c-9", "p-9", "ad-9")} if known_click else None
    result = validate_event(event, now=NOW, max_future_seconds=300, clicks=clicks)
    try:
        documented: EventIn | None = EventIn.model_validate(event)
    except ValidationError:
        documented = None
    if result.row is None:
        assert result.errors
        if documented is not None:  # refused for a rule of ingest alone
            assert all(any(rule in e for rule in _BEYOND_THE_SCHEMA) for e in result.errors)
        return
    assert documented is not None, f"accepted, but the schema refuses {event!r}"
    row = result.row
    assert (row.event_id, row.type, row.occurred_at, row.user_id) == (
        documented.event_id,
        documented.type,
        documented.occurred_at,
        documented.user_id,
    )
    assert (row.click_id, row.session_id, row.platform) == (
        documented.click_id,
        documented.session_id,
        documented.platform,
    )
    expected_properties = documented.properties
    assert row.properties == (
        None if expected_properties is None else orjson.dumps(expected_properties).decode()
    )
    own = (documented.content_id, documented.product_id, documented.ad_id)
    if documented.content_id is None and clicks is not None and row.click_id in clicks:
        inherited = clicks["ck1"]
        assert (row.content_id, row.product_id, row.ad_id) == (
            inherited.content_id,
            own[1] if own[1] is not None else inherited.product_id,
            own[2] if own[2] is not None else inherited.ad_id,
        )
    else:
        assert (row.content_id, row.product_id, row.ad_id) == own
