"""GET /v1/attribution/data-driven: Markov or Shapley credits per channel, JSON or CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field

from services.attribution.datadriven import service
from services.attribution.datadriven.markov import TooManyStates
from services.attribution.datadriven.repository import ChannelDimension
from services.attribution.datadriven.schemas import DataDrivenOut, Method
from services.attribution.datadriven.source import PathSource, SqlPathSource
from services.attribution.settings.service import load_rules
from shared.app import ReadSessionDep, SourceChooser
from shared.auth import Principal, require_scope
from shared.csv_export import csv_response
from shared.errors import UnprocessableEntity
from shared.ranges import RangeQuery
from shared.timeouts import bounded

router = APIRouter(prefix="/v1/attribution", tags=["attribution"])
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]
CSV_COLUMNS = ("channel", "removal_effect", "conversions", "revenue")


def path_source(request: Request, session: ReadSessionDep) -> PathSource:
    """The app's chooser of path sources when it has one (``path_sources`` in its state, set
    by a service running an analytic store), else the database's paths."""
    choose: SourceChooser[PathSource] | None = getattr(request.app.state, "path_sources", None)
    return choose(request, session) if choose is not None else SqlPathSource(session)


class DataDrivenQuery(RangeQuery):
    method: Method = "markov"
    channel: ChannelDimension = "content"
    # An int in 1..3, not a Literal: a query string's "2" must validate as 2.
    order: int = Field(1, ge=1, le=3, description="Markov order (states of k channels)")
    format: Literal["json", "csv"] = "json"


@router.get(
    "/data-driven",
    response_model=DataDrivenOut,
    summary="Data-driven attribution: Markov removal effects or Shapley values per channel",
    description="Converting paths: each paid order's touches in the click window before it; "
    "non-converting paths: each user's other touches in the range. Channels are the touches' "
    "content, ad, platform or ad format; touches without one are left out. Credits sum to the "
    "converting paths (and their revenue), channels by conversions, descending.",
    responses={
        422: {"description": "Invalid query, or too many Markov states to answer on request"},
        503: {"description": "The report took longer than its time bound"},
    },
)
async def data_driven(
    request: Request,
    principal: Reader,
    session: ReadSessionDep,
    query: Annotated[DataDrivenQuery, Query()],
    source: Annotated[PathSource, Depends(path_source)],
) -> Response:
    settings = request.app.state.settings
    rules = await load_rules(
        session, principal.tenant_id, settings.secret, with_webhook_secret=False
    )
    paths = await bounded(
        service.load_paths(
            session,
            principal.tenant_id,
            query.channel,
            query.from_.astimezone(dt.UTC),
            query.to.astimezone(dt.UTC),
            rules,
            source,
        ),
        getattr(settings, "report_timeout_seconds", None),
        session=session,
    )
    try:
        report = service.report(
            paths,
            method=query.method,
            dimension=query.channel,
            order=query.order,
            currency=rules.currency,
        )
    except TooManyStates as exc:
        raise UnprocessableEntity(str(exc)) from None
    if query.format == "csv":
        return csv_response(
            CSV_COLUMNS,
            (c.model_dump() for c in report.channels),
            filename=f"data-driven-{query.method}-{query.channel}.csv",
        )
    return Response(report.model_dump_json(), media_type="application/json")
