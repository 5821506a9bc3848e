from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from shared.schemas import Currency, Schema, UTCDatetimeOut

Platform = Literal["shopify", "woocommerce"]
# No ':' — order ids are "<integration_id>:<shop order id>".
INTEGRATION_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Outcome = Literal["applied", "replayed", "pending", "ignored", "failed"]


class IntegrationIn(Schema):
    platform: Platform
    shop: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="Shopify shop domain (xxx.myshopify.com) or WooCommerce site URL"
    )
    secret: Annotated[str, StringConstraints(min_length=1, max_length=512)] = Field(
        description="The key the shop signs webhooks with; stored encrypted, never shown"
    )
    currency: Currency | None = Field(
        None, description="The shop currency; orders in another currency are refused"
    )


class IntegrationOut(BaseModel):
    integration_id: str
    platform: Platform
    shop: str
    currency: str | None
    secret_set: bool
    webhook_path: str
    created_at: UTCDatetimeOut
    updated_at: UTCDatetimeOut


class IntegrationList(BaseModel):
    integrations: list[IntegrationOut]


class DeliveryOut(BaseModel):
    delivery_key: str
    topic: str
    order_id: str | None
    outcome: Outcome
    reason: str | None
    headers: dict[str, str]
    body: str
    received_at: UTCDatetimeOut


class UnmatchedProduct(BaseModel):
    product_id: str
    lines: int
    quantity: int


class UnmatchedList(BaseModel):
    products: list[UnmatchedProduct]


class WebhookAnswer(BaseModel):
    outcome: Outcome | Literal["ping", "duplicate"]
    order_id: str | None = None
    reason: str | None = None
