"""Query parameters of the content operations reports."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from services.attribution.reports.operations.scorecard_repository import LEVELS, Level
from services.attribution.reports.query import OUTPUTS, Id, Output, Range, ReportQuery
from services.attribution.reports.query import _one_of as one_of
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT

InteractionsTable = Literal["accounts", "contents", "days", "unanswered"]
INTERACTIONS_TABLES: tuple[InteractionsTable, ...] = get_args(InteractionsTable)


class RangeQuery(Range):
    format: Annotated[Output | None, one_of(OUTPUTS)] = Field(
        None, description="json (default) or csv; `Accept: text/csv` also selects CSV"
    )

    def as_report_query(self) -> ReportQuery:
        return ReportQuery.model_validate({"from": self.from_, "to": self.to})


class InteractionsQuery(RangeQuery):
    account_id: Id = Field(None, description="Only this account's comments and dms")
    content_id: Id = Field(None, description="Only this content's comments")
    table: Annotated[InteractionsTable, one_of(INTERACTIONS_TABLES)] = Field(
        "accounts", description="CSV only: accounts (default), contents, days or unanswered"
    )
    limit: int = Field(
        DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Unanswered comments per page"
    )
    cursor: str | None = Field(None, description="`unanswered.next_cursor` of the previous page")


class ScorecardQuery(RangeQuery):
    level: Annotated[Level, one_of(LEVELS)] = Field(
        "content", description="account, content (default) or campaign"
    )
