from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from services.catalog.core.schemas import ShortText, Stamped, end_after_start
from shared.schemas import Currency, Money, MoneyOut, Schema, UTCDatetime, UTCDatetimeOut
from shared.vocabulary import ENGAGEMENT_OBJECTIVE, Activity


class CampaignIn(Schema):
    name: ShortText
    objective: ShortText | None = Field(
        None, max_length=64, description="e.g. sales, reach, engagement"
    )
    activity: Activity | None = Field(
        None,
        description="With `objective: engagement` only: the activity the campaign runs, "
        "qa (Q&A), lucky_draw, topic (a topic discussion) or challenge",
    )
    starts_at: UTCDatetime | None = None
    ends_at: UTCDatetime | None = None
    budget: Money | None = None
    currency: Currency | None = Field(
        None, description="Required with a budget", validate_default=True
    )

    _ends_after_starts = field_validator("ends_at")(end_after_start("starts_at"))

    @field_validator("activity")
    @classmethod
    def _activity_with_engagement(cls, value: str | None, info: ValidationInfo) -> str | None:
        objective = info.data.get("objective")
        if value is not None and objective != ENGAGEMENT_OBJECTIVE:
            got = "no objective" if objective is None else f"objective {objective!r}"
            raise ValueError(
                f"is only taken with objective {ENGAGEMENT_OBJECTIVE!r} (got {got}); "
                f"set objective to {ENGAGEMENT_OBJECTIVE!r} or leave activity out"
            )
        return value

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
    activity: str | None
    starts_at: UTCDatetimeOut | None
    ends_at: UTCDatetimeOut | None
    budget: MoneyOut | None
    currency: str | None
