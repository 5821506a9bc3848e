from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from services.catalog.core.schemas import ShortText, Stamped, end_after_start
from shared.schemas import Currency, Money, MoneyOut, Schema, UTCDatetime, UTCDatetimeOut


class CampaignIn(Schema):
    name: ShortText
    objective: ShortText | None = Field(None, max_length=64, description="e.g. sales, reach")
    starts_at: UTCDatetime | None = None
    ends_at: UTCDatetime | None = None
    budget: Money | None = None
    currency: Currency | None = Field(
        None, description="Required with a budget", validate_default=True
    )

    _ends_after_starts = field_validator("ends_at")(end_after_start("starts_at"))

    @field_validator("currency")
    @classmethod
    def _currency_with_budget(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("budget") is not None:
            raise ValueError("is required when a budget is given")
        return value


class CampaignOut(Stamped):
    id: str
    name: str
    objective: str | None
    starts_at: UTCDatetimeOut | None
    ends_at: UTCDatetimeOut | None
    budget: MoneyOut | None
    currency: str | None
