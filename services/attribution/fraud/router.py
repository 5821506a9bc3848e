"""GET /v1/reports/fraud: touches the fraud rules flagged or rejected, JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from services.attribution.fraud import repository
from services.attribution.fraud.schemas import FraudReport
from services.attribution.fraud.service import fraud_report
from services.attribution.settings.service import load_rules
from shared.app import ReadSessionDep
from shared.auth import Principal, require_scope
from shared.csv_export import csv_response

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]
CSV_COLUMNS = ("day", "reason", "mode", "content_id", "ad_id", "touches", "orders")
MAX_RANGE = dt.timedelta(days=366)


class FraudQuery(BaseModel):
    model_config = {"populate_by_name": True, "extra": "forbid"}

    from_: AwareDatetime = Field(alias="from", description="Touches from (inclusive)")
    to: AwareDatetime = Field(description="Touches until (exclusive)")
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _range(self) -> FraudQuery:
        for value in (self.from_, self.to):
            if not 1970 <= value.year <= 9998:
                raise ValueError("from and to must fall in the years 1970 to 9998")
        if self.to <= self.from_:
            raise ValueError("to must be after from")
        if self.to - self.from_ > MAX_RANGE:
            raise ValueError(f"the range may span at most {MAX_RANGE.days} days")
        return self


@router.get(
    "/fraud",
    response_model=FraudReport,
    summary="Touches the fraud rules flagged or rejected, by rule, day, content and ad",
    description="Counts the touches judged when orders were attributed (a touch that never "
    "stood to earn an order credit is not judged) in the range of touch times; days in the "
    "tenant's timezone. CSV gives `rows`.",
    responses={422: {"description": "Invalid query"}},
)
async def fraud(
    request: Request,
    principal: Reader,
    session: ReadSessionDep,
    query: Annotated[FraudQuery, Query()],
) -> Response:
    rules = await load_rules(
        session, principal.tenant_id, request.app.state.settings.secret, with_webhook_secret=False
    )
    verdicts = await repository.verdicts_in_range(
        session, principal.tenant_id, query.from_.astimezone(dt.UTC), query.to.astimezone(dt.UTC)
    )
    report = fraud_report(verdicts, rules.timezone)
    if query.format == "csv":
        return csv_response(
            CSV_COLUMNS, (row.model_dump() for row in report.rows), filename="fraud.csv"
        )
    return Response(report.model_dump_json(), media_type="application/json")
