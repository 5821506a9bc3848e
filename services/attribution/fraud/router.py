"""GET /v1/reports/fraud: touches the fraud rules flagged or rejected, JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.attribution.fraud import repository
from services.attribution.fraud.schemas import FraudReport
from services.attribution.fraud.service import fraud_report
from services.attribution.settings.service import load_rules
from shared.app import ReadSessionDep
from shared.auth import Principal, require_scope
from shared.csv_export import csv_response
from shared.ranges import RangeQuery

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]
CSV_COLUMNS = ("day", "reason", "mode", "content_id", "ad_id", "touches", "orders")


class FraudQuery(RangeQuery):
    format: Literal["json", "csv"] = "json"


@router.get(
    "/fraud",
    response_model=FraudReport,
    summary="Touches the fraud rules flagged or rejected, by rule, day, content and ad",
    description="Counts the touches judged when orders were attributed (a touch that never "
    "stood to earn an order credit is not judged) in the range of touch times; days in the "
    "tenant's timezone. CSV gives `rows`.",
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with `format=csv`",
        },
        422: {"description": "Invalid query"},
    },
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
