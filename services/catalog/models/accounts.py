from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed


class Account(ClientKeyed, Base):
    __tablename__ = "accounts"

    platform: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(256))
