"""GET /v1/reports/fraud: touches the fraud rules flagged or rejected, JSON or CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.attribution.fraud import repository
from services.attribution.fraud.schemas import FraudReport
from services.attribution.fraud.service import fraud_report
from services.attribution.settings.deps import ReportRules
from shared.app import ReadSessionDep
from shared.auth import ReportsReader
from shared.csv_export import CSV_OR_JSON, ExportFormat, export_response
from shared.ranges import RangeQuery

router = APIRouter(prefix="/v1/reports", tags=["reports"])
CSV_COLUMNS = ("day", "reason", "mode", "content_id", "ad_id", "touches", "orders")


class FraudQuery(RangeQuery):
    format: ExportFormat = "json"


@router.get(
    "/fraud",
    response_model=FraudReport,
    summary="Touches the fraud rules flagged or rejected, by rule, day, content and ad",
    description="Counts the touches judged when orders were attributed (a touch that never "
    "stood to earn an order credit is not judged) in the range of touch times; days in the "
    "tenant's timezone. CSV gives `rows`.",
    responses={200: CSV_OR_JSON, 422: {"description": "Invalid query"}},
)
async def fraud(
    rules: ReportRules,
    principal: ReportsReader,
    session: ReadSessionDep,
    query: Annotated[FraudQuery, Query()],
) -> Response:
    verdicts = await repository.verdicts_in_range(session, principal.tenant_id, *query.utc())
    report = fraud_report(verdicts, rules.timezone)
    rows = (row.model_dump() for row in report.rows)
    return export_response(query.format, report, CSV_COLUMNS, rows, filename="fraud.csv")
