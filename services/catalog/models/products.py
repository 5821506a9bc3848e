from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed
from shared.db import JSONDoc, MoneyType


class Product(ClientKeyed, Base):
    __tablename__ = "products"

    title: Mapped[str] = mapped_column(String(512))
    price: Mapped[Decimal] = mapped_column(MoneyType())
    currency: Mapped[str] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(String(2048))
    category: Mapped[str | None] = mapped_column(String(256))
    external_ids: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc())
