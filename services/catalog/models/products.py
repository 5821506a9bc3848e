from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from services.catalog.models.base import Base, ClientKeyed
from shared.catalog_columns import ProductColumns


class Product(ClientKeyed, ProductColumns, Base):
    __tablename__ = "products"

    # Attribution needs no product URL: this column is the catalog's own.
    url: Mapped[str | None] = mapped_column(String(2048))
