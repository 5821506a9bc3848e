from __future__ import annotations

import datetime as dt

from pydantic import Field

from services.catalog.core.schemas import AdFormat, ShortText, Stamped
from shared.schemas import ClientId, Currency, Money, MoneyOut, Schema


class AdIn(Schema):
    campaign_id: ClientId
    content_id: ClientId = Field(description="The content the ad runs in or promotes")
    product_id: ClientId | None = None
    format: AdFormat = Field(description="`native` (in-content) or pre_roll, overlay, banner")
    name: ShortText | None = None


class AdOut(Stamped):
    id: str
    campaign_id: str
    content_id: str
    product_id: str | None
    format: str
    name: str | None


class AdSpendIn(Schema):
    amount: Money
    currency: Currency


class AdSpendOut(Stamped):
    ad_id: str
    day: dt.date
    amount: MoneyOut
    currency: str
