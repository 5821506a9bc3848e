"""The catalog's declarative base and the columns every catalog table has."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import RevokedTokenColumns, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


class TenantEntity:
    """Tenant-first key, audit timestamps and a soft-delete marker."""

    # sort_order puts tenant_id first in every table (and so first in every primary key).
    tenant_id: Mapped[str] = mapped_column(String(128), primary_key=True, sort_order=-100)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, sort_order=100)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, sort_order=100)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime(), default=None, sort_order=100
    )


class ClientKeyed(TenantEntity):
    """A catalog object keyed by the id its client chose (``PUT /v1/accounts/{account_id}``)."""

    id: Mapped[str] = mapped_column(String(128), primary_key=True)


class RevokedToken(RevokedTokenColumns, Base):
    """Tokens revoked by id (``clipfunnel revoke``); queried through ``shared.revocation``."""
