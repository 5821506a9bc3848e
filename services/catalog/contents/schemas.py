from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from services.catalog.core.schemas import (
    NO_NUL,
    Placement,
    ShortText,
    Stamped,
    Text,
    end_after_start,
)
from shared.schemas import ClientId, Schema, UTCDatetime, UTCDatetimeOut
from shared.vocabulary import ContentKind

Topic = Annotated[
    str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NO_NUL)
]


class ContentIn(Schema):
    kind: ContentKind = Field(description="`video` or `live` (a live stream)")
    account_id: ClientId = Field(description="The creator account that published it")
    title: Text
    published_at: UTCDatetime | None = None
    started_at: UTCDatetime | None = Field(None, description="A live room opens")
    ended_at: UTCDatetime | None = Field(None, description="A live room closes")
    duration_seconds: int | None = Field(None, ge=0, le=31_536_000)
    topics: list[Topic] | None = Field(None, max_length=50)
    format: ShortText | None = Field(None, max_length=64, description="e.g. tutorial, unboxing")

    _ended_after_started = field_validator("ended_at")(end_after_start("started_at"))


class ContentOut(Stamped):
    id: str
    kind: str
    account_id: str
    title: str
    published_at: UTCDatetimeOut | None
    started_at: UTCDatetimeOut | None
    ended_at: UTCDatetimeOut | None
    duration_seconds: int | None
    topics: list[str] | None
    format: str | None


class ContentProductIn(Schema):
    placement: Placement
    starts_at: UTCDatetime | None = Field(None, description="e.g. pinned in the live room from")
    ends_at: UTCDatetime | None = None

    _ends_after_starts = field_validator("ends_at")(end_after_start("starts_at"))


class ContentProductOut(Stamped):
    content_id: str
    product_id: str
    placement: str
    starts_at: UTCDatetimeOut | None
    ends_at: UTCDatetimeOut | None
