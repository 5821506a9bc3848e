"""Wire formats of the fraud report."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

Reason = Literal["click_injection", "click_flood", "rate_cap", "duplicate_click_id"]
Mode = Literal["flag", "reject"]


class RuleTotal(BaseModel):
    reason: Reason
    mode: Mode
    touches: int = Field(description="Distinct touches that broke the rule")
    orders: int = Field(description="Distinct orders those touches would have credited")


class FraudRow(BaseModel):
    day: dt.date = Field(description="Day of the touch in the tenant's timezone")
    reason: Reason
    mode: Mode
    content_id: str | None
    ad_id: str | None
    touches: int
    orders: int


class FraudReport(BaseModel):
    timezone: str
    by_rule: list[RuleTotal]
    rows: list[FraudRow]
