"""The buffer's writer: pulls what the routes accepted and commits it with the same rules.

A batch is pulled, its events written per tenant through the events service (validation
with the stored clicks, idempotency on ``event_id``, late-touch re-attribution, the rejected
store) and then its order posts one by one through the orders service (idempotency on
``(order_id, status)``), each in its own transaction; only after the commit are the
messages acknowledged. A database that is down or slow fails the batch: its messages are
handed back to the broker (``nak`` with a delay) and tried again, so an outage costs time,
never an event. An order post the database refuses (a conflicting replay, a currency other
than the tenant's) cannot be answered any more: it is kept in the rejected-events store with
the reason (``event_id`` ``order:<order_id>:<status>``) and acknowledged.

Status posts of one order may reach the writer out of order: a post delivered to a writer
that was killed comes back only after the ack wait, while the posts the client sent after it
are delivered at once. A post refused only because the order is not yet in a status it can
follow (a ``cancelled`` whose ``paid`` is still on its way back) is held in the database
(:mod:`.held`) and acknowledged; after every batch the writer tries the held posts again,
and one still out of order after ``HOLD_SECONDS`` counts as refused. (Handing such a post
back to the broker with a delayed redelivery instead lost one now and then under repeated
kills: acknowledged, gone from the stream, never written.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections import defaultdict
from typing import Any, Literal

import orjson
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.attribution.core.metrics import INGEST_BUFFER_PENDING, INGEST_BUFFER_WRITTEN
from services.attribution.events import repository as events_repository
from services.attribution.events import service as events_service
from services.attribution.events.validation import Rejection
from services.attribution.ingest_buffer import held
from services.attribution.ingest_buffer.broker import Broker, tenant_of
from services.attribution.orders import service as orders_service
from services.attribution.orders.lifecycle import TRANSITIONS, transition
from services.attribution.orders.schemas import OrderIn
from shared.bodies import parse_model
from shared.db import make_sessionmaker, utcnow
from shared.errors import Conflict, ProblemError

log = logging.getLogger("clipfunnel.ingest_buffer")

FETCH_BATCH = 500
RETRY_DELAY_SECONDS = 1.0
#: How long a post may wait for the post it follows before it counts as refused. Ten
#: minutes: under repeated kills a ``paid`` can come back after its ``cancelled`` by more
#: than two (the orders crash test saw it on SQLite with the buffer, 50 kills in 194 s).
HOLD_SECONDS = 600.0
#: Held posts tried after each batch (the oldest first).
RELEASE_BATCH = 200

#: What became of one status post: committed, kept as refused, or held for later.
Outcome = Literal["written", "refused", "later"]


def may_follow_later(current: str | None, wanted: str) -> bool:
    """Whether ``wanted``, refused on an order in ``current``, could apply once posts not yet
    written move the order on (``cancelled`` on an unknown order: yes; ``paid`` on a
    cancelled one: never)."""
    reachable: set[str] = set()
    frontier = [current]
    while frontier:
        state = frontier.pop()
        for following, action in TRANSITIONS.get(state, {}).items():
            if action == "apply" and following not in reachable:
                reachable.add(following)
                frontier.append(following)
    return any(transition(state, wanted) is not None for state in reachable - {current})


class Writer:
    def __init__(
        self,
        broker: Broker,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        secret: str,
        max_future_seconds: int,
    ) -> None:
        self.broker = broker
        self.sessionmaker = sessionmaker
        self.secret = secret
        self.max_future_seconds = max_future_seconds

    @functools.cached_property
    def _read_sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """Held posts are looked for after every batch: in a read transaction, which never
        takes SQLite's write slot (see shared.db)."""
        return make_sessionmaker(self.sessionmaker.kw["bind"], read_only=True)

    async def run_forever(self) -> None:
        subscription = await self.broker.subscribe()
        while True:
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=1.0)
            except TimeoutError:
                # Nothing to pull. nats-py raises its own TimeoutError, and a bare asyncio one
                # when its deadline runs out between two requests of one fetch: both are
                # ``TimeoutError`` (catching only the former let the latter end the writer).
                await self._release_or_retry_later()
                continue
            except Exception:  # not CancelledError (a BaseException): stopping still stops
                # The broker is unreachable or reconnecting: the writer must outlive it.
                log.warning("ingest buffer: could not pull; retrying", exc_info=True)
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                continue
            try:
                await self.write(messages)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "ingest buffer: could not write %d message(s); retrying",
                    len(messages),
                    exc_info=True,
                )
                INGEST_BUFFER_WRITTEN.labels("batch", "retried").inc()
                await asyncio.gather(*(m.nak(delay=RETRY_DELAY_SECONDS) for m in messages))
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                continue
            await asyncio.gather(*(m.ack() for m in messages))
            await self._release_or_retry_later()
            try:
                INGEST_BUFFER_PENDING.set((await self.broker.lag()).pending)
            except Exception:  # the gauge is a nicety; the next batch sets it again
                log.debug("ingest buffer: lag unavailable", exc_info=True)

    async def write(self, messages: list[Msg]) -> None:
        """Commit every message of the batch (events first, then orders in stream order);
        an order post that must wait for an earlier one is held (committed too)."""
        events: dict[str, list[Any]] = defaultdict(list)
        orders: list[tuple[Msg, str]] = []
        for message in messages:
            tenant = tenant_of(message)
            if tenant is None:  # not written by ClipFunnel's routes: nothing to apply
                log.error("ingest buffer: a message without a tenant on %s", message.subject)
                continue
            if message.subject == self.broker.events_subject:
                events[tenant].append(orjson.loads(message.data))
            else:
                orders.append((message, tenant))
        for tenant, raw_events in events.items():
            async with self.sessionmaker() as session:
                outcome = await events_service.ingest(
                    session,
                    tenant,
                    raw_events,
                    now=utcnow(),
                    max_future_seconds=self.max_future_seconds,
                )
                await session.commit()
            events_service.record_metrics(outcome)
            INGEST_BUFFER_WRITTEN.labels("events", "written").inc(len(raw_events))
        for message, tenant in orders:
            if await self.write_order(tenant, message.data) == "later":
                await self._hold(tenant, message)

    async def release_held(self, *, now: dt.datetime | None = None) -> int:
        """Try the held posts again (the post they follow may be written by now); returns
        how many were written or refused."""
        now = now or utcnow()
        async with self._read_sessionmaker() as session:
            waiting = await held.held_posts(session, RELEASE_BATCH)
        released = 0
        for post in waiting:
            may_wait = (now - post.held_at).total_seconds() < HOLD_SECONDS
            outcome = await self.write_order(post.tenant_id, post.body, may_hold=may_wait)
            if outcome == "later":
                continue
            # After the post's own commit: a crash in between tries it again, and writing
            # it again is a replay.
            async with self.sessionmaker() as session:
                await held.release(session, post)
                await session.commit()
            INGEST_BUFFER_WRITTEN.labels("orders", "released").inc()
            released += 1
        return released

    async def _release_or_retry_later(self) -> None:
        try:
            await self.release_held()
        except asyncio.CancelledError:
            raise
        except Exception:  # the held posts stay held; the next batch tries them again
            log.warning("ingest buffer: could not write held posts; retrying", exc_info=True)

    async def _hold(self, tenant_id: str, message: Msg) -> None:
        body: Any = orjson.loads(message.data)  # an order post, validated when accepted
        accepted_at = message.metadata.timestamp if message.reply else utcnow()
        async with self.sessionmaker() as session:
            await held.hold(
                session,
                tenant_id,
                str(body["order_id"]),
                str(body["status"]),
                message.data,
                accepted_at=accepted_at,
                now=utcnow(),
            )
            await session.commit()
        INGEST_BUFFER_WRITTEN.labels("orders", "held").inc()

    async def write_order(self, tenant_id: str, raw: bytes, *, may_hold: bool = True) -> Outcome:
        """Commit one status post, or keep it as refused; "later": it may apply once an
        earlier post of its order is written (only when ``may_hold``; else it is refused)."""
        payload: OrderIn | None = None
        async with self.sessionmaker() as session:
            try:
                payload = parse_model(OrderIn, raw)  # validated before it was accepted
                context = await orders_service.order_context(
                    session, tenant_id, self.secret, payload
                )
                await orders_service.ingest_order(session, tenant_id, payload, context)
            except ProblemError as refused:
                await session.rollback()
                if (
                    isinstance(refused, Conflict)
                    and payload is not None
                    and may_hold
                    and await self._out_of_order(session, tenant_id, payload)
                ):
                    await session.rollback()
                    return "later"
                await self._keep_refused(session, tenant_id, raw, refused)
                INGEST_BUFFER_WRITTEN.labels("orders", "refused").inc()
                return "refused"
            await session.commit()
        INGEST_BUFFER_WRITTEN.labels("orders", "written").inc()
        return "written"

    async def _out_of_order(self, session: AsyncSession, tenant_id: str, payload: OrderIn) -> bool:
        """Whether the refused post only awaits an earlier post of its order (read anew)."""
        context = await orders_service.order_context(session, tenant_id, self.secret, payload)
        return context.previous_hash is None and may_follow_later(
            context.order_status, payload.status
        )

    async def _keep_refused(
        self, session: AsyncSession, tenant_id: str, raw: bytes, refused: ProblemError
    ) -> None:
        body: Any = orjson.loads(raw)
        fields = body if isinstance(body, dict) else {}
        key = f"order:{fields.get('order_id')}:{fields.get('status')}"
        log.warning("ingest buffer: order post %s refused: %s", key, refused)
        rejection = Rejection(0, key, [str(refused)], {"order": body}, "order")
        await events_repository.store_rejections(
            session, tenant_id, [rejection], received_at=utcnow()
        )
        await session.commit()
