"""Wire formats of ``POST /v1/funnels``: the funnel query and its answer.

Every refusal names what is allowed: unknown step types, breakdowns and filter keys list
the accepted ones; counts and ranges give their bounds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from services.attribution.funnels.engine import MAX_STEPS, MIN_STEPS
from shared.schemas import ClientId, Schema, UTCDatetime, format_utc
from shared.vocabulary import ContentKind, EventType, Platform

StepType = Literal[EventType, "order"]
BreakdownKey = Literal["platform", "content_id", "ad_id", "account_id", "content_kind"]

STEP_TYPES: tuple[str, ...] = get_args(StepType)
BREAKDOWN_KEYS: tuple[str, ...] = get_args(BreakdownKey)
FunnelOrder = Literal["ordered", "strict", "unordered"]
FUNNEL_ORDERS: tuple[str, ...] = get_args(FunnelOrder)
HoldKey = Literal["content_id", "product_id", "ad_id", "platform", "account_id"]
HOLD_KEYS: tuple[str, ...] = get_args(HoldKey)
BreakdownAttribution = Literal["first_step", "last_step", "all_steps", "step"]
#: At most this many exclusion steps per funnel.
MAX_EXCLUSIONS = 5
DEFAULT_STEPS: tuple[str, ...] = ("impression", "view", "click", "order")
DEFAULT_WINDOW_SECONDS = 7 * 86400
MAX_WINDOW_SECONDS = 90 * 86400


def _before(
    low: tuple[str, Any], rule: str, high: tuple[str, Any], show: Callable[[Any], str] = str
) -> None:
    """The one ordering rule of a funnel's bounds: ``low`` < ``high`` (each a name and its
    value), or a ValueError that names both values (``"<low> (<value>) <rule> <high> (…)"``)."""
    (low_name, low_value), (high_name, high_value) = low, high
    if low_value >= high_value:
        raise ValueError(f"{low_name} ({show(low_value)}) {rule} {high_name} ({show(high_value)})")


def _explain_naive(value: Any, handler: ValidatorFunctionWrapHandler) -> dt.datetime:
    """The shared instant's rules, with a hint of what to send for a naive timestamp."""
    try:
        result: dt.datetime = handler(value)
    except ValidationError as exc:
        if any(e["type"] == "timezone_aware" for e in exc.errors()):
            raise ValueError(
                "a timestamp must carry a timezone offset, e.g. 2024-05-01T00:00:00Z or "
                "2024-05-01T08:00:00+08:00 (naive timestamps are refused)"
            ) from None
        raise
    return result


#: An instant from 1970 to the end of 9999 in UTC (see ``shared.schemas.UTCDatetime``).
Instant = Annotated[UTCDatetime, WrapValidator(_explain_naive)]


class FunnelFilters(Schema):
    """Dimensions an event (or order) must have; an event lacking one does not match it.

    ``platform`` is the event's own platform, else the platform of its content's account;
    ``account_id`` and ``content_kind`` come from the event's content in the catalog. An
    order matches ``content_id``/``ad_id``/``account_id``/``platform``/``content_kind``
    when one of its ``last_touch`` credits does, and ``product_id`` when one of its lines
    does.
    """

    content_id: ClientId | None = Field(
        None, description="The event's content (an order's: that of a last-touch credit)"
    )
    ad_id: ClientId | None = Field(
        None, description="The event's ad (an order's: that of a last-touch credit)"
    )
    product_id: ClientId | None = Field(
        None, description="The event's product (an order's: that of one of its lines)"
    )
    platform: Platform | None = Field(
        None, description="The event's platform, else that of its content's account"
    )
    account_id: ClientId | None = Field(None, description="The account of the content")
    content_kind: ContentKind | None = Field(None, description="The kind of the content")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in FILTER_KEYS)
            if unknown:
                raise ValueError(
                    f"unknown filter key(s) {', '.join(unknown)}; allowed: {', '.join(FILTER_KEYS)}"
                )
        return data

    def given(self) -> dict[str, str]:
        """The filters that were set, in a fixed key order."""
        values = {key: getattr(self, key) for key in FILTER_KEYS}
        return {key: value for key, value in values.items() if value is not None}


#: The filter keys, in the order a plan lists them.
FILTER_KEYS: tuple[str, ...] = tuple(FunnelFilters.model_fields)


class FunnelStep(Schema):
    type: StepType = Field(
        description="An event type, or `order` (a paid order of the buyer, at its paid time)"
    )
    filters: FunnelFilters | None = Field(
        default=None, description="Filters for this step only (on top of the global ones)"
    )
    optional: bool = Field(
        default=False,
        description="A chain may skip this step (never the first or the last): the step counts "
        "users whose chain includes it, the next required step counts users either way",
    )


class FunnelExclusion(Schema):
    """An event (or order) that voids a conversion when it lies between two of its steps."""

    type: StepType = Field(description="An event type, or `order`")
    filters: FunnelFilters | None = Field(
        default=None, description="Filters of the excluded item (the global ones come on top)"
    )
    from_step: int = Field(strict=True, ge=0, description="0-based step after which it voids")
    to_step: int = Field(strict=True, ge=1, description="0-based step before which it voids")

    @model_validator(mode="after")
    def _steps_in_order(self) -> FunnelExclusion:
        _before(("from_step", self.from_step), "must be smaller than", ("to_step", self.to_step))
        return self


def _default_steps() -> list[FunnelStep]:
    return [FunnelStep(type=step) for step in DEFAULT_STEPS]


class FunnelQuery(Schema):
    steps: list[FunnelStep] = Field(
        default_factory=_default_steps,
        description=f"{MIN_STEPS} to {MAX_STEPS} steps, in order "
        "(default: impression → view → click → order)",
        json_schema_extra={"minItems": MIN_STEPS, "maxItems": MAX_STEPS},
    )
    from_: Instant = Field(
        alias="from", description="Start of the range (inclusive) for the first step"
    )
    to: Instant = Field(description="End of the range (exclusive) for the first step")
    window_seconds: int = Field(
        default=DEFAULT_WINDOW_SECONDS,
        strict=True,
        description="Longest time from the first step to the last (inclusive), "
        f"1 to {MAX_WINDOW_SECONDS} (90 days); default 7 days",
        json_schema_extra={"minimum": 1, "maximum": MAX_WINDOW_SECONDS},
    )
    filters: FunnelFilters | None = Field(default=None, description="Filters for every step")
    breakdown: BreakdownKey | None = Field(
        default=None,
        description="Split by this dimension of the first step's event: each value is its own "
        "funnel whose first step has that value",
    )
    order: FunnelOrder = Field(
        default="ordered",
        description="`ordered` (default): steps in time order; `strict`: each step's item "
        "directly follows the previous one in the user's stream (any other event or order "
        "between them breaks the chain); `unordered`: the steps in any order within the window",
    )
    exclusions: list[FunnelExclusion] = Field(
        default_factory=list,
        description=f"Up to {MAX_EXCLUSIONS} exclusion steps: a conversion with a matching item "
        "strictly between its `from_step` and `to_step` items (or, stopping before `to_step`, "
        "after its `from_step` item within the window) is void",
        json_schema_extra={"maxItems": MAX_EXCLUSIONS},
    )
    hold_constant: list[HoldKey] = Field(
        default_factory=list,
        description="Dimensions every item of a chain shares, with one same non-null value "
        "(an order has a product when one of its lines has it, a content, ad, platform or "
        "account when one of its last-touch credits has it)",
        json_schema_extra={"maxItems": len(HOLD_KEYS), "uniqueItems": True},
    )
    breakdown_attribution: BreakdownAttribution = Field(
        default="first_step",
        description="Which item's value places a user in a breakdown value's funnel: "
        "`first_step` (default), `last_step` (the furthest step the user reached), "
        "`all_steps` (every item of the chain has it) or `step` (the item of `breakdown_step`)",
    )
    breakdown_step: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        description="0-based step of `breakdown_attribution: step` (only with it)",
    )

    @field_validator("hold_constant")
    @classmethod
    def _distinct_holds(cls, keys: list[str]) -> list[str]:
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValueError(f"hold_constant lists {', '.join(repeated)} more than once")
        return keys

    @field_validator("steps")
    @classmethod
    def _step_count(cls, steps: list[FunnelStep]) -> list[FunnelStep]:
        if not MIN_STEPS <= len(steps) <= MAX_STEPS:
            raise ValueError(f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps; got {len(steps)}")
        return steps

    @field_validator("window_seconds")
    @classmethod
    def _window(cls, value: int) -> int:
        if not 1 <= value <= MAX_WINDOW_SECONDS:
            raise ValueError(
                f"window_seconds must be between 1 and {MAX_WINDOW_SECONDS} (90 days); got {value}"
            )
        return value

    @field_validator("exclusions")
    @classmethod
    def _exclusion_count(cls, exclusions: list[FunnelExclusion]) -> list[FunnelExclusion]:
        if len(exclusions) > MAX_EXCLUSIONS:
            raise ValueError(
                f"a funnel has at most {MAX_EXCLUSIONS} exclusions; got {len(exclusions)}"
            )
        return exclusions

    @model_validator(mode="after")
    def _range(self) -> FunnelQuery:
        _before(("`from`", self.from_), "must be before", ("`to`", self.to), show=format_utc)
        return self


class FunnelStepOut(BaseModel):
    type: StepType
    users: int = Field(
        description="Distinct users reaching this step (an optional step: whose chain has it)"
    )
    conversion_from_start: float | None = Field(
        description="users / users of step 1 (null when step 1 has none)"
    )
    conversion_from_previous: float | None = Field(
        description="users / users of the previous step, the nearest required one before it "
        "(null for step 1, or when it has none)"
    )
    median_seconds_from_previous: float | None = Field(
        description="Median time from the previous step, over users reaching this step "
        "(null for step 1, or when no user reached it)"
    )
    average_seconds_from_previous: float | None = Field(
        description="Mean time from the previous step, over the same users and chains as the "
        "median (null for step 1, when no user reached it, or in an `unordered` funnel)"
    )
    dropped_off: int | None = Field(
        description="Users at the previous step who did not reach this one (null for step 1)"
    )


class FunnelBreakdownOut(BaseModel):
    value: str
    steps: list[FunnelStepOut]


class FunnelOut(BaseModel):
    steps: list[FunnelStepOut]
    breakdown: list[FunnelBreakdownOut] = Field(
        description="One funnel per value of the breakdown dimension, most step-1 users first "
        "(empty without `breakdown`)"
    )


#: At most this many bins in a time-to-convert histogram.
MAX_BINS = 100
#: At most this many user ids per page of ``POST /v1/funnels/users``.
MAX_USERS_PAGE = 10_000


class TimeToConvertQuery(FunnelQuery):
    from_step: int = Field(default=0, strict=True, ge=0, description="0-based; default 0")
    to_step: int | None = Field(
        default=None, strict=True, ge=1, description="0-based; default the last step"
    )
    bins: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_BINS,
        description=f"1 to {MAX_BINS} equal-width bins; default automatic (Sturges' rule)",
    )


class TimeBinOut(BaseModel):
    from_seconds: float = Field(description="Start of the bin (inclusive)")
    to_seconds: float = Field(description="End of the bin (exclusive)")
    users: int


class TimeToConvertOut(BaseModel):
    users: int = Field(description="Users who reached `to_step`")
    average_seconds: float | None = Field(description="Mean time (null without users)")
    median_seconds: float | None = Field(description="Median time (null without users)")
    bins: list[TimeBinOut] = Field(description="Equal-width bins covering the times")


class FunnelUsersQuery(FunnelQuery):
    step: int = Field(strict=True, ge=0, description="0-based step")
    status: Literal["reached", "dropped"] = Field(
        default="reached",
        description="`reached`: users who reached `step`; `dropped`: users who reached the "
        "step before it (the nearest required one) but not `step`",
    )
    limit: int = Field(default=1000, strict=True, ge=1, le=MAX_USERS_PAGE, description="Page size")
    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page (user ids after it)"
    )


class FunnelUsersOut(BaseModel):
    users: list[str] = Field(description="User ids, ascending")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page (null: last)")


TrendInterval = Literal["day", "week", "month"]


class TrendsQuery(FunnelQuery):
    interval: TrendInterval = Field(
        default="day", description="Local periods of the tenant's timezone (weeks from Monday)"
    )


class TrendPointOut(BaseModel):
    period_start: str = Field(description="Local start of the period, with its UTC offset")
    entered: int = Field(description="Users with a first-step item in the period (and range)")
    converted: int = Field(description="Users with a full chain whose first item is in it")
    conversion_rate: float | None = Field(description="converted / entered (null: none entered)")


class TrendsOut(BaseModel):
    timezone: str
    points: list[TrendPointOut]
