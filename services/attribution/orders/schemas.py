from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from shared.schemas import ClientId, Currency, Money, MoneyOut, Schema, UTCDatetime

OrderStatus = Literal["created", "paid", "cancelled", "refunded"]

# Stored money is NUMERIC(18,4): 14 digits before the point.
MAX_REVENUE = Decimal(10) ** 14 - Decimal("0.0001")


class OrderItem(Schema):
    product_id: ClientId
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Money


class OrderIn(Schema):
    order_id: ClientId
    status: OrderStatus = Field(description="created → paid → refunded; created/paid → cancelled")
    occurred_at: UTCDatetime = Field(description="When the shop recorded this status")
    user_id: ClientId | None = Field(None, description="Buyer's pseudonymous id (a hash)")
    click_ids: Annotated[list[ClientId], Field(max_length=50)] | None = None
    currency: Currency
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _buyer_is_known(self) -> OrderIn:
        if self.user_id is None and not self.click_ids:
            raise ValueError("an order needs a user_id or at least one click_id")
        total = sum((item.unit_price * item.quantity for item in self.items), Decimal(0))
        if total > MAX_REVENUE:
            raise ValueError(
                f"the order's revenue ({total}) exceeds the largest amount ClipFunnel stores "
                f"({MAX_REVENUE}); check the items' unit_price and quantity"
            )
        return self


class RefundItem(Schema):
    product_id: ClientId
    quantity: int = Field(ge=1, le=1_000_000)


class RefundIn(Schema):
    refund_id: ClientId
    occurred_at: UTCDatetime
    items: Annotated[list[RefundItem], Field(min_length=1, max_length=500)] | None = None
    amount: Money | None = None

    @model_validator(mode="after")
    def _items_or_amount(self) -> RefundIn:
        if (self.items is None) == (self.amount is None):
            raise ValueError("give either items or amount (exactly one)")
        if self.amount is not None and self.amount <= 0:
            raise ValueError("amount must be positive")
        return self


class CreditOut(BaseModel):
    product_id: str
    content_id: str | None
    ad_id: str | None
    event_id: str
    touch: Literal["click", "view"]
    occurred_at: UTCDatetime
    weight: float
    amount: MoneyOut
    flags: list[str] = Field(
        default_factory=list, description="Fraud rules in flag mode this touch broke"
    )


class SuspiciousTouch(BaseModel):
    """A touch that broke a fraud rule for this order: credited but marked, or rejected."""

    event_id: str
    reason: Literal["click_injection", "click_flood", "rate_cap", "duplicate_click_id"]
    mode: Literal["flag", "reject"]
    touch: Literal["click", "view"]
    touch_at: UTCDatetime
    content_id: str | None
    ad_id: str | None


class OrderAnswer(BaseModel):
    order_id: str
    status: OrderStatus
    buyer_id: str | None
    revenue: MoneyOut
    currency: str
    model: str
    credits: list[CreditOut]


class LineOut(BaseModel):
    product_id: str
    quantity: int
    unit_price: MoneyOut
    refunded_quantity: int
    revenue: MoneyOut


class RefundOut(BaseModel):
    refund_id: str
    order_id: str
    occurred_at: UTCDatetime
    amount: MoneyOut
    items: list[RefundItem] | None
    currency: str
    order_revenue: MoneyOut
    order_status: OrderStatus


class OrderOut(BaseModel):
    order_id: str
    status: OrderStatus
    buyer_id: str | None
    user_id: str | None
    click_ids: list[str]
    currency: str
    ordered_at: UTCDatetime | None
    paid_at: UTCDatetime | None
    cancelled_at: UTCDatetime | None
    gross_revenue: MoneyOut
    refunded: MoneyOut
    revenue: MoneyOut
    lines: list[LineOut]
    refunds: list[RefundOut]
    created_at: UTCDatetime
    updated_at: UTCDatetime


class AttributionOut(BaseModel):
    order_id: str
    model: str
    currency: str
    revenue: MoneyOut
    credits: list[CreditOut]
    suspicious_touches: list[SuspiciousTouch] = Field(
        default_factory=list,
        description="Touches that broke a fraud rule: rejected ones earned nothing",
    )
