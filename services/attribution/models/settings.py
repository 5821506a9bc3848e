from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, UTCDateTime, utcnow


class TenantSettings(Base):
    """Per-tenant attribution rules. A tenant without a row uses the defaults."""

    __tablename__ = "tenant_settings"

    tenant_id: Mapped[str] = tenant_key()
    currency: Mapped[str | None] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    click_window_seconds: Mapped[int] = mapped_column(Integer, default=7 * 86400)
    view_window_seconds: Mapped[int] = mapped_column(Integer, default=86400)
    match: Mapped[str] = mapped_column(String(16), default="product")
    default_model: Mapped[str] = mapped_column(String(32), default="last_touch")
    # Encrypted at rest under a key derived from CLIPFUNNEL_SECRET (see shared.crypto).
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # Thresholds and modes of the fraud rules; null or missing keys take the defaults.
    fraud_rules: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
