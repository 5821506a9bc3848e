"""The JetStream stream behind the ingest buffer: publishing, pulling and measuring lag.

One stream (``ATTRIBUTION_INGEST_STREAM``, default ``CLIPFUNNEL_INGEST``) with work-queue
retention: a message stays until the writer acknowledges it after its database commit, so
the messages in the stream are exactly the ones not yet visible. Subjects are
``<stream in lower case>.events`` (one message per event) and ``….orders`` (one per status
post). Each message carries the tenant in a header and a ``Nats-Msg-Id`` (tenant + event id,
or tenant + order id + status), so the broker drops a client's retry inside its duplicate
window; past it, the database's own idempotency keys do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nats
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

TENANT_HEADER = "ClipFunnel-Tenant"
#: How long the broker remembers message ids to drop retries (JetStream's default is 2 min).
DUPLICATE_WINDOW_SECONDS = 600.0
WRITER = "clipfunnel-writer"
#: A delivered message not acknowledged in this time is delivered again.
ACK_WAIT_SECONDS = 10.0
MAX_IN_FLIGHT = 20_000


@dataclass(frozen=True, slots=True)
class Lag:
    pending: int  # messages accepted but not yet committed to the database
    oldest: dt.datetime | None  # when the oldest of them was accepted (None: caught up)


class Broker:
    """A connection to JetStream and the ingest stream's names."""

    def __init__(self, client: Client, stream: str) -> None:
        self.client = client
        self.js: JetStreamContext = client.jetstream()
        self.stream = stream
        self.events_subject = f"{stream.lower()}.events"
        self.orders_subject = f"{stream.lower()}.orders"
        self.any_subject = f"{stream.lower()}.>"

    @classmethod
    async def connect(cls, url: str, stream: str) -> Broker:
        client = await nats.connect(
            url, connect_timeout=5, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        broker = cls(client, stream)
        await broker.ensure_stream()
        return broker

    async def ensure_stream(self) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[self.events_subject, self.orders_subject],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            await self.js.add_stream(config)

    async def close(self) -> None:
        await self.client.drain()

    async def publish_events(
        self, tenant_id: str, raw_events: Sequence[Any], *, deduplicate: bool = True
    ) -> list[bool]:
        """One message per event, published together; for each, whether it was new.

        Invalid events go too, without a message id (a corrected event of the same id must
        not be taken for a retry): the writer keeps them in the rejected-events store, as a
        direct post would.
        """
        acks = await asyncio.gather(
            *(
                self.js.publish(
                    self.events_subject,
                    orjson.dumps(raw),
                    headers=_headers(
                        tenant_id, _event_message_id(tenant_id, raw) if deduplicate else None
                    ),
                )
                for raw in raw_events
            )
        )
        return [not ack.duplicate for ack in acks]

    async def publish_order(self, tenant_id: str, order_id: str, status: str, raw: bytes) -> bool:
        ack = await self.js.publish(
            self.orders_subject,
            raw,
            headers=_headers(tenant_id, f"orders:{tenant_id}:{order_id}:{status}"),
        )
        return not ack.duplicate

    async def subscribe(self) -> JetStreamContext.PullSubscription:
        """The writer's durable pull subscription (shared by every writer of the stream).

        Explicit acks after the commit; a message not acknowledged within ``ack_wait`` (a
        writer killed mid-batch) is delivered again, and the database's idempotency keys make
        the second write a no-op.
        """
        config = ConsumerConfig(
            durable_name=WRITER,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ACK_WAIT_SECONDS,
            max_ack_pending=MAX_IN_FLIGHT,
        )
        await self.js.add_consumer(self.stream, config)  # idempotent for the same config
        return await self.js.pull_subscribe_bind(durable=WRITER, stream=self.stream)

    async def lag(self) -> Lag:
        state = (await self.js.stream_info(self.stream)).state
        if state.messages == 0:
            return Lag(0, None)
        try:
            # The first message at or after ``first_seq`` on any subject of the stream. (The
            # subject filter is what makes it "next": without one JetStream looks up that one
            # sequence, which the writer may have acknowledged since the first read.)
            oldest = await self.js.get_msg(
                self.stream, seq=state.first_seq, subject=self.any_subject, next=True
            )
        except NotFoundError:
            # The writer committed and acknowledged all of them between the two reads.
            return Lag(0, None)
        return Lag(state.messages, oldest.time)


def tenant_of(message: Msg) -> str | None:
    return (message.headers or {}).get(TENANT_HEADER)


def _headers(tenant_id: str, message_id: str | None) -> dict[str, str]:
    headers = {TENANT_HEADER: tenant_id}
    if message_id is not None:
        headers["Nats-Msg-Id"] = message_id
    return headers


def _event_message_id(tenant_id: str, raw: Any) -> str | None:
    event_id = raw.get("event_id") if type(raw) is dict else None
    return f"events:{tenant_id}:{event_id}" if type(event_id) is str else None
