from __future__ import annotations

from pydantic import Field

from services.catalog.core.schemas import ShortText, Stamped, Text, Url
from shared.schemas import Currency, Money, MoneyOut, Schema


class ProductIn(Schema):
    title: Text
    price: Money = Field(description="Unit price, a non-negative decimal string")
    currency: Currency
    url: Url | None = None
    category: ShortText | None = None


class ProductOut(Stamped):
    id: str
    title: str
    price: MoneyOut
    currency: str
    url: str | None
    category: str | None
