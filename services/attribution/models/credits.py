"""Credits: each touch's share of each order line, kept for every model."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import MoneyType, UTCDateTime


class Credit(Base):
    """One touch's share of one order line under one model.

    Credits are kept for every model, so any model is a plain indexed read at report time.
    ``paid_at`` is copied from the order: report ranges select credits by it.
    """

    __tablename__ = "credits"
    __table_args__ = (Index(None, "tenant_id", "model", "paid_at"),)

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    product_id: Mapped[str] = mapped_column(String(128))
    content_id: Mapped[str | None] = mapped_column(String(128))
    ad_id: Mapped[str | None] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(128))
    touch: Mapped[str] = mapped_column(String(8))
    touch_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    weight: Mapped[float] = mapped_column(Float)
    amount: Mapped[Decimal] = mapped_column(MoneyType())
    # This credit's fraction of one order: line revenue / order revenue × weight.
    order_share: Mapped[float] = mapped_column(Float)
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    currency: Mapped[str] = mapped_column(String(3))
    # Fraud rules in flag mode this touch broke for this order, comma-separated (or null).
    flags: Mapped[str | None] = mapped_column(String(128))


class TouchVerdict(Base):
    """A fraud rule one touch broke for one order, in flag or reject mode.

    Rewritten with the order's credits each time it is attributed; the fraud report and the
    order's attribution answer read them.
    """

    __tablename__ = "touch_verdicts"
    __table_args__ = (Index(None, "tenant_id", "touch_at"),)

    tenant_id: Mapped[str] = tenant_key()
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    mode: Mapped[str] = mapped_column(String(8))
    touch: Mapped[str] = mapped_column(String(8))
    touch_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    content_id: Mapped[str | None] = mapped_column(String(128))
    ad_id: Mapped[str | None] = mapped_column(String(128))
    paid_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
