"""The attribution service's declarative base."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import RevokedTokenColumns, new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


def tenant_key() -> Mapped[str]:
    # sort_order keeps tenant_id the first column, and so first in every primary key.
    return mapped_column(String(128), primary_key=True, sort_order=-100)


class RevokedToken(RevokedTokenColumns, Base):
    """Tokens revoked by id (``clipfunnel revoke``); queried through ``shared.revocation``."""
