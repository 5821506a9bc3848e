from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, MoneyType, UTCDateTime, utcnow


class Order(Base):
    """An order's current state, folded from the status posts and refunds received."""

    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "tenant_id", "buyer_id", "paid_at"),
        Index(None, "tenant_id", "paid_at"),
    )

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(128))
    # The stitched buyer: user_id, else the user of the first known click among click_ids.
    buyer_id: Mapped[str | None] = mapped_column(String(128))
    click_ids: Mapped[list[str]] = mapped_column(JSONDoc(), default=list)
    currency: Mapped[str] = mapped_column(String(3))
    ordered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    gross_revenue: Mapped[Decimal] = mapped_column(MoneyType())
    revenue: Mapped[Decimal] = mapped_column(MoneyType())
    refunded: Mapped[Decimal] = mapped_column(MoneyType())
    attributed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderLine(Base):
    __tablename__ = "order_lines"

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    product_id: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(MoneyType())
    # Current revenue of the line: quantity × unit price less what refunds took from it.
    revenue: Mapped[Decimal] = mapped_column(MoneyType())
    refunded_quantity: Mapped[int] = mapped_column(Integer, default=0)


class OrderClick(Base):
    """An order's click_ids, so a late click can find the orders that name it."""

    __tablename__ = "order_clicks"

    tenant_id: Mapped[str] = tenant_key()
    click_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)


class OrderStatusPost(Base):
    """One accepted status post; the unique key makes (tenant, order, status) idempotent."""

    __tablename__ = "order_status_posts"

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The first answer, replayed verbatim to an identical retry.
    response: Mapped[dict[str, Any]] = mapped_column(JSONDoc())


class HeldOrderPost(Base):
    """A buffered status post that awaits an earlier post of its order (a ``cancelled``
    whose ``paid`` is still on its way back through the broker): kept here, durably, once
    its message is acknowledged, and written by the buffer's writer when it can follow."""

    __tablename__ = "held_order_posts"
    __table_args__ = (Index(None, "held_at"),)

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)  # the post as accepted (JSON text)
    accepted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # by the broker
    held_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (Index(None, "tenant_id", "order_id"),)

    tenant_id: Mapped[str] = tenant_key()
    refund_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc())
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
