"""The attribution service's declarative base."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


def tenant_key() -> Mapped[str]:
    # sort_order keeps tenant_id the first column, and so first in every primary key.
    return mapped_column(String(128), primary_key=True, sort_order=-100)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"

    tenant_id: Mapped[str] = tenant_key()
    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
