"""The ingest buffer on NATS JetStream (the real broker at 127.0.0.1:4222).

Each test has a stream of its own (deleted afterwards). Posts are answered 202 once the
broker holds them; the writer commits them with the rules of a direct post (idempotency,
the rejected store, attribution); until it has, `GET /v1/ingest/lag` says how far behind and
reads carry an `As-Of` watermark. On SQLite and PostgreSQL as the system of record.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.attribution.ingest_buffer.broker import Broker
from services.attribution.ingest_buffer.writer import HOLD_SECONDS, Writer
from services.attribution.models import Event, HeldOrderPost, RejectedEvent
from shared.db import utcnow
from tests.attribution.order_setup import at, make_shop, order_body, touch
from tests.conftest import (
    TEST_SECRET,
    DatabaseFactory,
    TokenFactory,
    attribution_settings,
    auth,
    client_for,
    running,
)
from tests.nats_support import NATS_URL, delete_stream, require_nats, stream_name

CATCH_UP_SECONDS = 30.0
#: Starts the service with the buffer, with (True) or without (False) its writer.
Start = Callable[[bool], AbstractAsyncContextManager[FastAPI]]


@pytest.fixture
async def stream() -> AsyncIterator[str]:
    require_nats()
    name = stream_name()
    yield name
    await delete_stream(name)


@pytest.fixture
def start_buffered(
    make_database: DatabaseFactory, var_dir: Path, catalog_app: FastAPI, stream: str
) -> Start:
    """Starts the service with the ingest buffer on ``stream``, with or without its writer."""
    from services.attribution.app import MIGRATIONS, create_app

    @contextlib.asynccontextmanager
    async def start(writer: bool) -> AsyncIterator[FastAPI]:
        settings = attribution_settings(
            make_database(MIGRATIONS),
            var_dir,
            ingest_buffer=NATS_URL,
            ingest_stream=stream,
            ingest_writer=writer,
        )
        transport = httpx.ASGITransport(app=catalog_app)
        app = create_app(settings, catalog_transport=transport, configure_logs=False)
        async with running(app):
            yield app

    return start


@pytest.fixture
async def buffered(start_buffered: Start) -> AsyncIterator[FastAPI]:
    async with start_buffered(True) as app:
        yield app


@pytest.fixture
async def writerless(start_buffered: Start) -> AsyncIterator[FastAPI]:
    """The service with the buffer but no writer: what a stopped ingest-worker looks like."""
    async with start_buffered(False) as app:
        yield app


async def lag(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    answer = await client.get("/v1/ingest/lag", headers=auth(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def caught_up(client: httpx.AsyncClient, token: str) -> None:
    deadline = asyncio.get_running_loop().time() + CATCH_UP_SECONDS
    while (await lag(client, token))["pending"]:
        assert asyncio.get_running_loop().time() < deadline, "the writer did not catch up"
        await asyncio.sleep(0.05)


async def stored(app: FastAPI, tenant: str) -> list[str]:
    async with app.state.read_sessionmaker() as session:
        rows = await session.execute(
            select(Event.event_id).where(Event.tenant_id == tenant).order_by(Event.event_id)
        )
        return list(rows.scalars())


async def rejected(app: FastAPI, tenant: str) -> list[str | None]:
    async with app.state.read_sessionmaker() as session:
        rows = await session.execute(
            select(RejectedEvent.event_id)
            .where(RejectedEvent.tenant_id == tenant)
            .order_by(RejectedEvent.id)
        )
        return list(rows.scalars())


def view(event_id: str, user: str = "u1") -> dict[str, Any]:
    return touch("view", at(hours=1), user=user, content="v1", event_id=event_id)


async def test_events_are_answered_202_and_written_once(
    buffered: FastAPI, make_token: TokenFactory, tenant: str
) -> None:
    token = make_token(tenant, "events:write", "reports:read")
    invalid = {"event_id": "bad", "type": "view", "occurred_at": "yesterday", "user_id": "u1"}
    body = {"events": [view("e1"), view("e2"), view("e1"), invalid, view("e3")]}
    async with client_for(buffered, "http://attribution.test") as client:
        first = await client.post("/v1/events", json=body, headers=auth(token))
        assert first.status_code == 202, first.text
        answer = first.json()
        assert (answer["accepted"], answer["duplicates"]) == (3, 1)
        assert [item["event_id"] for item in answer["rejected"]] == ["bad"]
        # A client retry: the broker knows every id, nothing new is accepted.
        again = await client.post("/v1/events", json=body, headers=auth(token))
        assert again.status_code == 202, again.text
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 4)
        await caught_up(client, token)
        assert (await lag(client, token))["mode"] == "buffer"
    assert await stored(buffered, tenant) == ["e1", "e2", "e3"]
    # Refused events reach the rejected store, as a direct post's do (once per post).
    assert await rejected(buffered, tenant) == ["bad", "bad"]


async def test_orders_are_attributed_by_the_writer(
    buffered: FastAPI, catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    async with client_for(buffered, "http://attribution.test") as client:
        shop = await make_shop(catalog, client, tenant, make_token(tenant, "admin"))
        events = [
            touch("view", at(hours=1), content="v1"),
            touch("click", at(hours=2), content="v2", product="p1"),
        ]
        posted = await client.post("/v1/events", json={"events": events}, headers=shop.headers)
        assert posted.status_code == 202, posted.text
        await caught_up(client, shop.token)  # the touches first: the order is then attributed
        order = order_body(order_id="o1", when=at(hours=3))
        answer = await client.post("/v1/orders", json=order, headers=shop.headers)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "order_id": "o1",
            "status": "paid",
            "buffered": True,
            "duplicate": False,
        }
        retry = await client.post("/v1/orders", json=order, headers=shop.headers)
        assert retry.status_code == 202
        assert retry.json()["duplicate"] is True
        await caught_up(client, shop.token)
        credits = await shop.credits("o1")
        assert [(c["content_id"], c["weight"]) for c in credits] == [("v2", 1.0)]
        # Another tenant sees none of it.
        other = make_token(f"{tenant}-other", "reports:read")
        missing = await client.get("/v1/orders/o1", headers=auth(other))
        assert missing.status_code == 404


async def test_a_stopped_writer_costs_visibility_not_posts(
    writerless: FastAPI, make_token: TokenFactory, tenant: str
) -> None:
    token = make_token(tenant, "events:write", "reports:read", "orders:write")
    posted_at = dt.datetime.now(dt.UTC)
    async with client_for(writerless, "http://attribution.test") as client:
        for batch in range(3):
            body = {"events": [view(f"e{batch}-{i}", user=f"u{i}") for i in range(10)]}
            answer = await client.post("/v1/events", json=body, headers=auth(token))
            assert answer.status_code == 202, answer.text
        # Two first-ever orders in two currencies: the writer can take only the first.
        for order_id, currency in (("o-cny", "CNY"), ("o-usd", "USD")):
            body = order_body(order_id=order_id, currency=currency, when=at(hours=2))
            answer = await client.post("/v1/orders", json=body, headers=auth(token))
            assert answer.status_code == 202, answer.text
        behind = await lag(client, token)
        assert behind["pending"] == 32
        assert behind["lag_seconds"] >= 0
        as_of = dt.datetime.fromisoformat(behind["as_of"])
        assert as_of >= posted_at - dt.timedelta(seconds=1)
        funnel = {
            "steps": [{"type": "view"}, {"type": "click"}],
            "from": at(hours=-1).isoformat(),
            "to": at(hours=5).isoformat(),
        }
        answer = await client.post("/v1/funnels", json=funnel, headers=auth(token))
        assert answer.status_code == 200, answer.text
        assert answer.json()["steps"][0]["users"] == 0
        assert dt.datetime.fromisoformat(answer.headers["As-Of"]) == as_of
        assert await stored(writerless, tenant) == []

        broker: Broker = writerless.state.ingest_buffer
        writer = Writer(
            broker, writerless.state.sessionmaker, secret=TEST_SECRET, max_future_seconds=300
        )
        task = asyncio.create_task(writer.run_forever())
        try:
            await caught_up(client, token)
        finally:
            task.cancel()
        answer = await client.post("/v1/funnels", json=funnel, headers=auth(token))
        assert answer.json()["steps"][0]["users"] == 10
        assert dt.datetime.fromisoformat(answer.headers["As-Of"]) >= as_of
    assert len(await stored(writerless, tenant)) == 30
    assert await rejected(writerless, tenant) == ["order:o-usd:paid"]


async def test_without_the_buffer_posts_are_direct_and_never_behind(
    attribution: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    token = make_token(tenant, "events:write", "reports:read")
    answer = await attribution.post(
        "/v1/events", json={"events": [view("e1")]}, headers=auth(token)
    )
    assert answer.status_code == 200
    body = await lag(attribution, token)
    assert (body["mode"], body["pending"], body["oldest_pending_at"]) == ("direct", 0, None)
    funnel = await attribution.post(
        "/v1/funnels",
        json={
            "steps": [{"type": "view"}, {"type": "click"}],
            "from": at(hours=-1).isoformat(),
            "to": at(hours=5).isoformat(),
        },
        headers=auth(token),
    )
    assert "As-Of" not in funnel.headers


async def test_lag_needs_a_token(buffered: FastAPI) -> None:
    async with client_for(buffered, "http://attribution.test") as client:
        answer = await client.get("/v1/ingest/lag")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")


async def test_lag_counts_what_is_left_once_the_oldest_message_is_acknowledged(
    stream: str,
) -> None:
    # The oldest pending message is looked up from the stream's first sequence on; once the
    # writer acknowledges the message at that sequence, the lookup must move on to the next
    # one and not report the stream caught up while 99 messages wait.
    broker = await Broker.connect(NATS_URL, stream)
    try:
        await broker.publish_events("t-lag", [{"event_id": f"lag-{n}"} for n in range(100)])
        first_seq = (await broker.js.stream_info(stream)).state.first_seq
        subscription = await broker.subscribe()
        (oldest,) = await subscription.fetch(1, timeout=5.0)
        await oldest.ack_sync()
        state = (await broker.js.stream_info(stream)).state
        assert (state.messages, state.first_seq) == (99, first_seq + 1)
        # The race the lookup must survive: the first read saw the acknowledged message.
        broker.js.stream_info = _stale_info(broker, first_seq)  # type: ignore[method-assign,assignment]
        lag = await broker.lag()
        assert lag.pending == 100  # as the first read saw it; never 0
        assert lag.oldest is not None
    finally:
        await broker.close()


def _stale_info(broker: Broker, first_seq: int) -> Callable[[str], Any]:
    """``stream_info`` as read just before the message at ``first_seq`` was acknowledged."""
    real = broker.js.stream_info

    async def stale(name: str) -> Any:
        info = await real(name)
        info.state.first_seq = first_seq
        info.state.messages += 1
        return info

    return stale


async def test_the_writer_outlives_a_bare_timeout_and_a_lost_broker_while_pulling() -> None:
    """nats-py's fetch raises a bare ``asyncio.TimeoutError`` (not its own subclass) when its
    deadline runs out between two pull requests, and connection errors while it reconnects:
    the writer must keep pulling after either (it used to end, and nothing was written)."""
    pulls = 0

    class Subscription:
        async def fetch(self, *_: Any, **__: Any) -> list[Any]:
            nonlocal pulls
            pulls += 1
            if pulls == 1:
                raise TimeoutError  # asyncio.TimeoutError is it: what nats-py's _fetch_n raises
            if pulls == 2:
                raise ConnectionResetError("the broker went away")
            raise asyncio.CancelledError  # ends the test's run

    class Pulling:
        async def subscribe(self) -> Subscription:
            return Subscription()

    writer = Writer(Pulling(), None, secret="s", max_future_seconds=60)  # type: ignore[arg-type]  # a broker that only pulls
    with pytest.raises(asyncio.CancelledError):
        await writer.run_forever()
    assert pulls == 3


async def _write_pulled(writer: Writer, subscription: Any) -> int:
    """One batch as the writer's loop takes it: pull, write, acknowledge."""
    messages = await subscription.fetch(100, timeout=2.0)
    await writer.write(messages)
    await asyncio.gather(*(m.ack() for m in messages))
    return len(messages)


async def held_posts(app: FastAPI) -> list[tuple[str, str, str]]:
    async with app.state.read_sessionmaker() as session:
        rows = await session.execute(
            select(HeldOrderPost.tenant_id, HeldOrderPost.order_id, HeldOrderPost.status)
        )
        return sorted(tuple(row) for row in rows)


async def test_a_post_ahead_of_the_one_it_follows_is_held_in_the_database_until_it_can_apply(
    writerless: FastAPI, catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    """A ``cancelled`` pulled before its ``paid`` (as after a kill of the writer holding the
    ``paid``) is kept in the database and acknowledged, not handed back to the broker; the
    lag counts it until the ``paid`` is written and the cancel with it. One whose ``paid``
    never comes is refused (kept in the rejected store) after ``HOLD_SECONDS``."""
    broker: Broker = writerless.state.ingest_buffer
    writer = Writer(
        broker, writerless.state.sessionmaker, secret=TEST_SECRET, max_future_seconds=3600
    )
    subscription = await broker.subscribe()
    async with client_for(writerless, "http://attribution.test") as client:
        shop = await make_shop(catalog, client, tenant, make_token(tenant, "admin"))
        for body in (
            order_body(order_id="o1", status="cancelled", when=at(hours=4)),
            order_body(order_id="o2", status="cancelled", when=at(hours=4)),
        ):
            answer = await client.post("/v1/orders", json=body, headers=shop.headers)
            assert answer.status_code == 202, answer.text
        assert await _write_pulled(writer, subscription) == 2
        assert await held_posts(writerless) == [
            (tenant, "o1", "cancelled"),
            (tenant, "o2", "cancelled"),
        ]
        behind = await lag(client, shop.token)
        assert behind["pending"] == 2  # the broker holds nothing: both are held
        assert behind["oldest_pending_at"] is not None
        assert (await client.get("/v1/orders/o1", headers=shop.headers)).status_code == 404

        paid = order_body(order_id="o1", when=at(hours=3))
        assert (await client.post("/v1/orders", json=paid, headers=shop.headers)).status_code == 202
        assert await _write_pulled(writer, subscription) == 1
        assert await writer.release_held() == 1  # o1's cancel; o2 still waits
        assert await held_posts(writerless) == [(tenant, "o2", "cancelled")]
        order = await client.get("/v1/orders/o1", headers=shop.headers)
        assert order.json()["status"] == "cancelled"
        assert (await lag(client, shop.token))["pending"] == 1

        later = utcnow() + dt.timedelta(seconds=HOLD_SECONDS + 1)
        assert await writer.release_held(now=later) == 1
        assert await held_posts(writerless) == []
        assert await rejected(writerless, tenant) == ["order:o2:cancelled"]
        assert (await lag(client, shop.token))["pending"] == 0
