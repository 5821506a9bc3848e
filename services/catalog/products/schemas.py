from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from services.catalog.core.schemas import NO_NUL, ShortText, Stamped, Text, Url
from shared.schemas import Currency, Money, MoneyOut, Schema

ExternalKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
ExternalValue = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NO_NUL)
]


class ProductIn(Schema):
    title: Text
    price: Money = Field(description="Unit price, a non-negative decimal string")
    currency: Currency
    url: Url | None = None
    category: ShortText | None = None
    external_ids: dict[ExternalKind, ExternalValue] | None = Field(
        None,
        max_length=20,
        description="The product's ids in the shops, so shop order lines find it: "
        "`shopify_variant`, `shopify_product`, `woocommerce_variant` (a variation), "
        "`woocommerce_product`, `sku` (a line matches by variant, then product, then SKU)",
        examples=[
            {"shopify_product": "632910392", "shopify_variant": "808950810", "sku": "IPOD2008"}
        ],
    )


class ProductOut(Stamped):
    id: str
    title: str
    price: MoneyOut
    currency: str
    url: str | None
    category: str | None
    external_ids: dict[str, str] | None = None
