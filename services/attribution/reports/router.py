"""``GET /v1/reports/{ads,contents,timeseries}``: thin HTTP over ``service.py``.

Every report takes ``from``/``to`` (ISO-8601 with an offset; from inclusive, to exclusive;
default the last 30 days ending now; at most ``max_report_days``), ``model`` (default the
tenant's), ``format=json|csv`` (or ``Accept: text/csv``) and ``include_inactive``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.reports import render, repository, service
from services.attribution.reports.query import (
    AdsQuery,
    ContentsQuery,
    Output,
    ReportQuery,
    Scope,
    TimeseriesQuery,
    invalid_query,
    reason,
    scope,
)
from services.attribution.reports.schemas import AdsReport, ContentsReport, Timeseries
from services.attribution.reports.viewers import SqlViewers, ViewerCounter
from services.attribution.settings.service import Rules, load_rules
from shared.app import ReadSessionDep, SourceChooser
from shared.auth import Principal, require_scope
from shared.db import utcnow
from shared.errors import UnprocessableEntity, validation_route
from shared.timeouts import report_bounded


def _invalid(exc: RequestValidationError) -> UnprocessableEntity:
    """A bad query is one 422 whose ``detail`` names each parameter and what it allows."""
    return invalid_query(map(reason, exc.errors()))


router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=validation_route(_invalid))
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem+json)"},
    403: {"description": "The token lacks the `reports:read` scope (problem+json)"},
    422: {"description": "Invalid query parameters; `errors` says what is allowed"},
    503: {"description": "The report took longer than `report_timeout_seconds` (Retry-After)"},
}


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": model,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with `format=csv` / `Accept: text/csv`",
        },
        **ERRORS,
    }


Q = TypeVar("Q", bound=ReportQuery)
R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")
Build = Callable[[AsyncSession, str, Rules, Scope, Q], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class Settled:
    """A report request's tenant rules, its query's scope and the instant it was settled at."""

    rules: Rules
    scope: Scope
    now: dt.datetime


#: A report's work once its query is settled: (session, tenant_id, settled) → the report.
Work = Callable[[AsyncSession, str, Settled], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class _Reports:
    """What every report route does: read the tenant's rules and settle the query's scope in
    one snapshot, then build the report within its time bound."""

    request: Request
    session: AsyncSession
    tenant_id: str

    @property
    def settings(self) -> Any:
        return self.request.app.state.settings

    async def rules(self) -> Rules:
        """The tenant's rules, read in the snapshot that every query of the request shares."""
        await repository.begin_snapshot(self.session)  # before the first query of the request
        return await load_rules(
            self.session, self.tenant_id, self.settings.secret, with_webhook_secret=False
        )

    async def settle(self, query: ReportQuery) -> Settled:
        rules = await self.rules()
        now = utcnow()
        covered = scope(
            query,
            default_model=rules.default_model,
            max_days=self.settings.max_report_days,
            now=now,
        )
        return Settled(rules, covered, now)

    async def bounded(self, work: Awaitable[T]) -> T:
        """``work`` within the report time bound: 503 problem+json beyond it (see
        ``shared.timeouts``)."""
        return await report_bounded(self.settings, work, self.session)

    async def run(self, query: ReportQuery, work: Work[T]) -> T:
        """Settle ``query``, then ``work(session, tenant_id, settled)`` within the time bound."""
        settled = await self.settle(query)
        return await self.bounded(work(self.session, self.tenant_id, settled))

    async def build(self, build: Build[Q, R], query: Q) -> R:
        return await self.run(
            query, lambda db, tenant, s: build(db, tenant, s.rules, s.scope, query)
        )

    def viewers(self) -> ViewerCounter:
        """Where distinct viewers are counted: the app's chooser when it has one
        (``viewer_sources`` in its state, set by a service running an analytic store)."""
        choose: SourceChooser[ViewerCounter] | None = getattr(
            self.request.app.state, "viewer_sources", None
        )
        return choose(self.request, self.session) if choose else SqlViewers(self.session)

    def csv(self, format: Output | None) -> bool:
        """Whether the request asks for CSV (``format=csv`` or ``Accept: text/csv``)."""
        return render.output(format, self.request.headers.get("accept")) == "csv"


def _reports(request: Request, principal: Reader, session: ReadSessionDep) -> _Reports:
    return _Reports(request, session, principal.tenant_id)


Reports = Annotated[_Reports, Depends(_reports)]


@router.get(
    "/ads",
    response_model=AdsReport,
    summary="Ad performance per ad and per format (native vs pre-roll, overlay, banner)",
    description="Events by the event's `ad_id`; orders and GMV from the chosen model's credits "
    "of orders paid in the range; spend from the local days (tenant timezone) that begin in "
    "the range. Spend in another currency than the report's is left out and named in "
    "`warnings`. CSV gives `rows`, or `by_format` with `table=by_format`.",
    responses=_responses(AdsReport),
)
async def ads(reports: Reports, query: Annotated[AdsQuery, Query()]) -> AdsReport | Response:
    report = await reports.build(service.ads_report, query)
    return render.ads_csv(report, query.table) if reports.csv(query.format) else report


@router.get(
    "/contents",
    response_model=ContentsReport,
    summary="Performance per video and live room",
    description="Events by the event's `content_id`; orders and GMV from the chosen model's "
    "credits of orders paid in the range. Live rooms split GMV into direct (orders paid while "
    "the room was live) and indirect; a video's GMV is all indirect.",
    responses=_responses(ContentsReport),
)
async def contents(
    reports: Reports, query: Annotated[ContentsQuery, Query()]
) -> ContentsReport | Response:
    report = await reports.build(partial(service.contents_report, viewers=reports.viewers()), query)
    return render.contents_csv(report) if reports.csv(query.format) else report


@router.get(
    "/timeseries",
    response_model=Timeseries,
    summary="One metric per local hour or day (tenant timezone, DST-correct)",
    description="Every bucket overlapping the range is present (zero when empty), ordered by "
    "start; `start` is the bucket's start in UTC. A local day is 23–25 hours around DST "
    "changes; hour buckets are real hours. The first and last bucket may reach outside the "
    "range; only data inside it counts.",
    responses=_responses(Timeseries),
)
async def timeseries(
    reports: Reports, query: Annotated[TimeseriesQuery, Query()]
) -> Timeseries | Response:
    series = await reports.build(service.timeseries, query)
    return render.timeseries_csv(series) if reports.csv(query.format) else series
