"""Enumerations and field types of the catalog API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    PlainSerializer,
    StringConstraints,
    UrlConstraints,
    ValidationInfo,
)

from shared.schemas import OutSchema, UTCDatetimeOut

Placement = Literal["product_card", "pinned", "cart_link", "mention", "native_ad"]
AdFormat = Literal["native", "pre_roll", "overlay", "banner"]

# PostgreSQL text and JSONB cannot hold a NUL character: refuse it here rather than fail there.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[
    str, StringConstraints(min_length=1, max_length=512, strip_whitespace=True, pattern=NO_NUL)
]
ShortText = Annotated[
    str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True, pattern=NO_NUL)
]
Url = Annotated[
    AnyHttpUrl,
    UrlConstraints(max_length=2048),  # the columns' size
    Field(description="An absolute http(s) URL"),
    PlainSerializer(str, return_type=str),
]


class Stamped(OutSchema):
    created_at: UTCDatetimeOut
    updated_at: UTCDatetimeOut


def end_after_start(start_field: str) -> Any:
    """A field validator for an end time: it must come after ``start_field`` when both are set.

    Raised on the end field itself, so the 422 names that field.
    """

    def check(cls: type, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        start = info.data.get(start_field)
        if value is not None and start is not None and value <= start:
            raise ValueError(f"must be after {start_field}")
        return value

    return check
