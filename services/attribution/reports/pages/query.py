"""Query parameters of a content's page and of a live room's timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field

from services.attribution.credit.engine import MODELS, Model
from services.attribution.reports.query import Id, Instant, Range, ReportQuery
from services.attribution.reports.query import _one_of as one_of
from shared.schemas import ID_PATTERN

ContentId = Annotated[str, Path(pattern=ID_PATTERN, description="The content's catalog id")]
MAX_ORDERS = 500
DEFAULT_ORDERS = 50
MAX_TIMELINE_MINUTES = 24 * 60


class _RuleModel(BaseModel):
    model: Annotated[Model | None, one_of(MODELS)] = Field(
        None, description="Attribution model (default: the tenant's); rule-based models only"
    )


class PageQuery(Range, _RuleModel):
    ad_id: Id = Field(None, description="Only the credits of touches on this ad (the ad's page)")
    max_orders: int = Field(
        DEFAULT_ORDERS,
        ge=1,
        le=MAX_ORDERS,
        description=f"Credited orders listed, latest paid first (at most {MAX_ORDERS})",
    )

    def as_report_query(self) -> ReportQuery:
        return ReportQuery.model_validate({"from": self.from_, "to": self.to, "model": self.model})


class TimelineQuery(_RuleModel):
    from_: Instant = Field(
        None,
        alias="from",
        description="Start, inclusive (default: when the room went live)",
    )
    to: Instant = Field(
        None,
        description="End, exclusive (default: when the room ended; "
        f"at most {MAX_TIMELINE_MINUTES} minutes after `from`)",
    )
