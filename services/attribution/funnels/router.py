"""``POST /v1/funnels`` (and its time to convert and users): thin HTTP over ``service.py``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.funnels import service
from services.attribution.funnels.schemas import (
    FunnelOut,
    FunnelQuery,
    FunnelUsersOut,
    FunnelUsersQuery,
    TimeToConvertOut,
    TimeToConvertQuery,
    TrendsOut,
    TrendsQuery,
)
from services.attribution.funnels.source import FunnelSource, SqlFunnelSource
from services.attribution.settings.service import load_rules
from shared.app import ReadSessionDep, SourceChooser
from shared.auth import Principal, require_scope
from shared.csv_export import CSV_OR_JSON, csv_response
from shared.errors import UnprocessableEntity, validation_errors, validation_route
from shared.timeouts import report_bounded


def _invalid(exc: RequestValidationError) -> UnprocessableEntity | None:
    """Validation errors name the fields *and* what each allows in ``detail`` too."""
    errors = validation_errors(exc)
    if any(e["msg"].startswith("malformed JSON") for e in errors):
        return None  # answered 400 by the shared handler
    reasons = "; ".join(f"{e['field'] or 'body'}: {e['msg']}" for e in errors)
    return UnprocessableEntity(f"Invalid funnel query: {reasons}.", errors=errors)


def funnel_source(request: Request, session: ReadSessionDep) -> FunnelSource:
    """Where funnels are answered: the app's chooser when it has one (``funnel_sources`` in
    its state, set by a service running an analytic store), else the SQL store.

    Given through the app's state rather than FastAPI's dependency overrides, which make
    every request of every route rebuild its dependency tree.
    """
    choose: SourceChooser[FunnelSource] | None = getattr(request.app.state, "funnel_sources", None)
    return choose(request, session) if choose is not None else SqlFunnelSource(session)


router = APIRouter(prefix="/v1/funnels", tags=["funnels"], route_class=validation_route(_invalid))
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]
Source = Annotated[FunnelSource, Depends(funnel_source)]
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Funnels:
    """What the funnel routes share: the tenant, the source and the report time bound."""

    request: Request
    session: AsyncSession
    source: FunnelSource
    tenant_id: str

    async def run(self, run: Callable[..., Awaitable[R]], query: object) -> R:
        """``run(source, tenant_id, query, max_report_days=…)`` within the time bound."""
        settings = self.request.app.state.settings
        work = run(self.source, self.tenant_id, query, max_report_days=settings.max_report_days)
        return await report_bounded(settings, work, self.session)


def _funnels(
    request: Request, principal: Reader, source: Source, session: ReadSessionDep
) -> _Funnels:
    return _Funnels(request, session, source, principal.tenant_id)


Funnels = Annotated[_Funnels, Depends(_funnels)]


@router.post(
    "",
    response_model=FunnelOut,
    summary="Ordered conversion funnel: distinct users per step, conversions, median times",
    description=(
        "A user reaches step k when distinct events e1…ek match steps 1…k, e1 lies in "
        "[from, to), their times do not decrease and ek − e1 ≤ window_seconds (ClickHouse's "
        "windowFunnel, with distinct events). `order` is a paid order of the buyer at its "
        "paid time; its contents and ads are those of its last-touch credits, its products "
        "its lines. "
        "Global filters apply to every step, a step's filters to that step; an event lacking "
        "a filtered dimension does not match. With `breakdown`, each value of the first "
        "step's event is its own funnel (`breakdown_attribution`: or of the last step reached, "
        "of every step, or of `breakdown_step`). `order`, `exclusions`, optional steps and "
        "`hold_constant` are the funnel modes (see the request's fields)."
    ),
    responses={
        401: {"description": "Missing or invalid bearer token (problem+json)"},
        403: {"description": "The token lacks the `reports:read` scope (problem+json)"},
        422: {
            "description": "Invalid query (problem+json naming what is allowed): unknown step "
            "type, filter key or breakdown; not 2–10 steps; `from` not before `to`; a range "
            "longer than the report limit; a window outside 1 s – 90 days; a naive timestamp, or "
            "one outside the years 1970–9999 in UTC"
        },
        503: {
            "description": "The funnel took longer than `report_timeout_seconds` (problem+json, "
            "Retry-After)"
        },
    },
)
async def post_funnel(query: FunnelQuery, funnels: Funnels) -> FunnelOut:
    return await funnels.run(service.run_funnel, query)


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem+json)"},
    403: {"description": "The token lacks the `reports:read` scope (problem+json)"},
    422: {"description": "Invalid query (problem+json naming the field and what is allowed)"},
    503: {"description": "Longer than `report_timeout_seconds` (problem+json, Retry-After)"},
}


@router.post(
    "/time-to-convert",
    response_model=TimeToConvertOut,
    summary="Time to convert: per converted user, the time from `from_step` to `to_step`",
    description=(
        "Per user who reached `to_step` (0-based, default the last step), the time from the "
        "`from_step` item (default 0) to the `to_step` item of their first conversion: the "
        "non-void chain ending at `to_step` that starts earliest, then reaches it earliest. "
        "Mean, median and equal-width bins covering the times."
    ),
    responses=_ERRORS,
)
async def post_time_to_convert(query: TimeToConvertQuery, funnels: Funnels) -> TimeToConvertOut:
    return await funnels.run(service.run_time_to_convert, query)


@router.post(
    "/users",
    response_model=FunnelUsersOut,
    summary="The users behind a step: who reached it, or who dropped off before it",
    description=(
        "`reached`: users whose deepest level includes `step` (0-based); `dropped`: users "
        "who reached `step − 1` but not `step`. Ascending user ids, keyset-paged by "
        "`cursor`; `?format=csv` answers the page as CSV (one `user_id` column)."
    ),
    responses={200: CSV_OR_JSON, **_ERRORS},
)
async def post_funnel_users(
    query: FunnelUsersQuery, funnels: Funnels, format: Literal["json", "csv"] = "json"
) -> FunnelUsersOut | Response:
    page = await funnels.run(service.run_funnel_users, query)
    if format == "csv":
        headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else {}
        rows = ({"user_id": user} for user in page.users)
        return csv_response(["user_id"], rows, filename="funnel-users.csv", headers=headers)
    return page


@router.post(
    "/trends",
    response_model=TrendsOut,
    summary="Conversion trend: per local day, week or month, users entering and converting",
    description=(
        "For each period of the tenant's timezone (DST included; weeks from Monday) meeting "
        "[from, to): `entered` = users with an item able to start the funnel in the period "
        "(and the range), `converted` = users with a full non-void chain whose first item "
        "lies in it, `conversion_rate` = converted / entered (null when none entered). "
        "Read from the system of record."
    ),
    responses=_ERRORS,
)
async def post_funnel_trends(
    query: TrendsQuery,
    principal: Reader,
    session: ReadSessionDep,
    source: Source,
    request: Request,
) -> TrendsOut:
    settings = request.app.state.settings
    rules = await load_rules(
        session, principal.tenant_id, settings.secret, with_webhook_secret=False
    )
    return await report_bounded(
        settings,
        service.run_trends(
            source,
            principal.tenant_id,
            query,
            rules.timezone,
            max_report_days=settings.max_report_days,
        ),
        session,
    )
