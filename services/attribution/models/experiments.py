"""Experiments: two to eight variants of content compared on one metric."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.attribution.models.base import Base, tenant_key
from shared.db import JSONDoc, UTCDateTime, utcnow


class Experiment(Base):
    """One experiment; ``variants`` is ``[{key, content_ids}]``, the first is the control."""

    __tablename__ = "experiments"

    tenant_id: Mapped[str] = tenant_key()
    experiment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    hypothesis: Mapped[str | None] = mapped_column(Text)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc())
    metric: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
