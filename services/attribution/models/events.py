from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, UTCDateTime, utcnow


class Event(Base):
    """What a viewer did. ``(tenant_id, event_id)`` is the client's idempotency key."""

    __tablename__ = "events"
    __table_args__ = (
        # Touches of a buyer, for attribution; and per-user funnels (type makes it covering).
        Index(None, "tenant_id", "user_id", "occurred_at", "type"),
        # Stitching an order's click_ids, and events inheriting their click's content.
        Index(None, "tenant_id", "click_id"),
        # Reports and funnels scan one type over a time range: covering, so they read only
        # the index (the columns grouped by and the funnel's first-step users).
        Index(None, "tenant_id", "type", "occurred_at", "user_id", "content_id", "ad_id"),
        # Reports per content over a time range.
        Index(None, "tenant_id", "content_id", "occurred_at"),
        # Events not yet copied to the analytic store (analytics_seq IS NULL) are found here.
        Index(None, "analytics_seq"),
    )

    tenant_id: Mapped[str] = tenant_key()
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[str] = mapped_column(String(128))
    content_id: Mapped[str | None] = mapped_column(String(128))
    product_id: Mapped[str | None] = mapped_column(String(128))
    ad_id: Mapped[str | None] = mapped_column(String(128))
    click_id: Mapped[str | None] = mapped_column(String(128))
    session_id: Mapped[str | None] = mapped_column(String(128))
    platform: Mapped[str | None] = mapped_column(String(32))
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The replication batch that copied the event to the analytic store; NULL until then.
    analytics_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)


class RejectedEvent(Base):
    """An event refused at ingest, kept with its reasons so nothing sent is lost."""

    __tablename__ = "rejected_events"

    tenant_id: Mapped[str] = tenant_key()
    # Time-ordered unique id (received microseconds + random suffix): pages in arrival order.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_index: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str | None] = mapped_column(String(256))
    errors: Mapped[list[str]] = mapped_column(JSONDoc())
    payload: Mapped[Any] = mapped_column(JSONDoc())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EventDaily(Base):
    """Events per UTC day, type, content and ad, kept current by ingest (same transaction).

    Reports over long ranges sum these rows for the whole days they cover and count only
    the partial days at their edges from ``events``: about 10x fewer rows to read. Absent
    content or ad ids are stored as ``""`` (primary-key columns cannot be NULL).
    ``watch_seconds``/``watch_events`` sum the numeric ``properties.watch_seconds`` of
    ``view`` and ``view_complete`` events (0 for other types).
    """

    __tablename__ = "event_daily"

    tenant_id: Mapped[str] = tenant_key()
    day: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)  # 00:00 UTC
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    content_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    ad_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    watch_seconds: Mapped[float] = mapped_column(Double())
    watch_events: Mapped[int] = mapped_column(BigInteger)


class Interaction(Base):
    """The conversation fields of a ``reply``, ``dm`` or ``dm_reply`` event (one row each).

    ``reply_to`` names the answered event by its ``event_id``; it is kept as sent, so a reply
    stored before its comment (or naming none of the tenant's events) matches once it arrives.
    """

    __tablename__ = "interactions"
    __table_args__ = (
        Index(None, "tenant_id", "reply_to"),
        Index(None, "tenant_id", "type", "occurred_at"),
    )

    tenant_id: Mapped[str] = tenant_key()
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    account_id: Mapped[str | None] = mapped_column(String(128))
    reply_to: Mapped[str | None] = mapped_column(String(128))
