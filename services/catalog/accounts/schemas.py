from __future__ import annotations

from pydantic import Field

from services.catalog.core.schemas import ShortText, Stamped
from shared.schemas import Schema
from shared.vocabulary import Platform


class AccountIn(Schema):
    platform: Platform = Field(description="Where the creator account lives")
    handle: ShortText = Field(description="The account's handle on that platform")
    display_name: ShortText | None = None


class AccountOut(Stamped):
    id: str
    platform: str
    handle: str
    display_name: str | None
