"""Shop connections (Shopify, WooCommerce) and every webhook delivery they sent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, UTCDateTime, utcnow


class Integration(Base):
    """One connected shop. Its id is global: the webhook URL carries no tenant."""

    __tablename__ = "integrations"
    # The unauthenticated webhook receiver finds the tenant from the integration id alone.
    __table_args__ = (Index("uq_integrations_integration_id", "integration_id", unique=True),)

    tenant_id: Mapped[str] = tenant_key()
    integration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    shop: Mapped[str] = mapped_column(String(256))
    currency: Mapped[str | None] = mapped_column(String(3))
    # Encrypted at rest under a key derived from CLIPFUNNEL_SECRET (see shared.crypto).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # The secret replaced last, still accepted for a while: shops keep signing with it.
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IntegrationDelivery(Base):
    """A signed webhook delivery as received, with what became of it."""

    __tablename__ = "integration_deliveries"
    __table_args__ = (Index(None, "tenant_id", "integration_id", "received_at"),)

    tenant_id: Mapped[str] = tenant_key()
    integration_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Shopify: the webhook id; WooCommerce: order id, date_modified_gmt and topic.
    delivery_key: Mapped[str] = mapped_column(String(256), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    body: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
