from __future__ import annotations

from services.catalog.models.base import Base, ClientKeyed
from shared.catalog_columns import AccountColumns


class Account(ClientKeyed, AccountColumns, Base):
    __tablename__ = "accounts"
