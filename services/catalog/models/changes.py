from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base
from shared.db import JSONDoc, UTCDateTime, utcnow


class Change(Base):
    """The change feed: one row per catalog write, in commit order.

    This is the one table whose key does not start with ``tenant_id``: the feed is a single
    cross-tenant log read by sequence number (on a Citus cluster it stays a local table on
    the coordinator; it is small and prunable).
    """

    __tablename__ = "changes"
    __table_args__ = (Index(None, "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(128))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(300))
    op: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(JSONDoc())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
