from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from shared.schemas import Currency, Schema

AttributionModel = Literal["last_touch", "first_touch", "linear", "time_decay", "position_based"]
MatchMode = Literal["product", "any"]
MAX_WINDOW_SECONDS = 90 * 86400


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{value!r} is not an IANA timezone (e.g. Asia/Shanghai, America/New_York, UTC)"
        ) from None
    return value


Timezone = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_check_timezone)
]
WindowSeconds = Annotated[int, Field(ge=1, le=MAX_WINDOW_SECONDS)]


FraudMode = Literal["flag", "reject"]


class FraudSettings(Schema):
    """Each fraud rule's mode and threshold; on PUT, fields left out stay as they are."""

    click_injection: FraudMode | None = Field(
        None, description="A click less than min_click_to_order_seconds before the order"
    )
    min_click_to_order_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    click_flood: FraudMode | None = Field(
        None, description="A user with more than max_clicks_per_user_hour clicks in an hour"
    )
    max_clicks_per_user_hour: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_clicks_per_order: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        None, description="click_flood also: an ad's clicks in a UTC day per order it won"
    )
    rate_cap: FraudMode | None = Field(
        None, description="A user with more than max_events_per_user_minute events in a minute"
    )
    max_events_per_user_minute: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    duplicate_click_id: FraudMode | None = Field(
        None, description="A click id reported for more than one user"
    )


class SettingsUpdate(Schema):
    """Fields left out stay as they are; `webhook_secret: null` clears the secret."""

    currency: Currency | None = None
    timezone: Timezone | None = None
    click_window_seconds: WindowSeconds | None = None
    view_window_seconds: WindowSeconds | None = None
    match: MatchMode | None = None
    default_model: AttributionModel | None = None
    webhook_secret: Annotated[str, StringConstraints(min_length=16, max_length=256)] | None = Field(
        None, description="Write-only HMAC key for signed order posts; null clears it"
    )
    fraud: FraudSettings | None = Field(
        None, description="Fraud rules: flag marks a touch's credit, reject withholds it"
    )
    # Read-only: accepted so a GET body can be PUT back unchanged (see update_settings).
    webhook_secret_set: bool | None = Field(
        None, description="Read-only; ignored when it matches the stored state"
    )


class SettingsOut(BaseModel):
    currency: str | None = Field(description="Set by the first order unless set here")
    timezone: str
    click_window_seconds: int
    view_window_seconds: int
    match: MatchMode
    default_model: AttributionModel
    webhook_secret: None = Field(None, description="Write-only: never shown")
    webhook_secret_set: bool
    fraud: FraudSettings
