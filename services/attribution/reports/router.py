"""``GET /v1/reports/{ads,contents,timeseries}``: thin HTTP over ``service.py``.

Every report takes ``from``/``to`` (ISO-8601 with an offset; from inclusive, to exclusive;
default the last 30 days ending now; at most ``max_report_days``), ``model`` (default the
tenant's), ``format=json|csv`` (or ``Accept: text/csv``) and ``include_inactive``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.attribution.credit.engine import MODELS
from services.attribution.reports import repository, service
from services.attribution.reports.buckets import INTERVALS
from services.attribution.reports.metrics import money_text
from services.attribution.reports.params import (
    OUTPUTS,
    Common,
    QueryErrors,
    parse_choice,
    parse_common,
    parse_id,
)
from services.attribution.reports.schemas import (
    AD_COLUMNS,
    CONTENT_COLUMNS,
    FORMAT_COLUMNS,
    POINT_COLUMNS,
    AdsReport,
    ContentsReport,
    Timeseries,
)
from services.attribution.settings.service import Rules, load_rules
from shared.app import ReadSessionDep
from shared.auth import Principal, require_scope
from shared.csv_export import csv_response
from shared.db import utcnow
from shared.timeouts import bounded
from shared.vocabulary import PLATFORMS

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require_scope("reports:read"))]
PLATFORM_CHOICES = tuple(sorted(PLATFORMS))
TABLES = ("rows", "by_format")


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"enum": list(values)}


FromParam = Annotated[
    str | None,
    Query(
        alias="from",
        description="Start, inclusive: ISO-8601 with an offset (default: `to` − 30 days)",
        examples=["2026-03-01T00:00:00+08:00"],
    ),
]
ToParam = Annotated[
    str | None,
    Query(description="End, exclusive: ISO-8601 with an offset (default: now)"),
]
ModelParam = Annotated[
    str | None,
    Query(description="Attribution model (default: the tenant's)", json_schema_extra=_enum(MODELS)),
]
FormatParam = Annotated[
    str | None,
    Query(
        description="json (default) or csv; `Accept: text/csv` also selects CSV",
        json_schema_extra=_enum(OUTPUTS),
    ),
]
InactiveParam = Annotated[
    str | None,
    Query(
        description="true adds every catalog ad/content without activity, with zeros",
        json_schema_extra={"enum": ["true", "false"]},
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem+json)"},
    403: {"description": "The token lacks the `reports:read` scope (problem+json)"},
    422: {"description": "Invalid query parameters; `errors` says what is allowed"},
    503: {"description": "The report took longer than `report_timeout_seconds` (Retry-After)"},
}


def _responses(model: type[Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "model": model,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with `format=csv` / `Accept: text/csv`",
        },
        **ERRORS,
    }


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return money_text(value)  # already rounded to the currency's minor unit
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body, default=_default), media_type="application/json")


def _timeout(request: Request) -> float | None:
    """The report time bound (503 problem+json beyond it); see ``shared.timeouts``."""
    seconds: float | None = getattr(request.app.state.settings, "report_timeout_seconds", None)
    return seconds


def _stamp(common: Common) -> str:
    return f"{common.start:%Y%m%dT%H%M%SZ}-{common.end:%Y%m%dT%H%M%SZ}"


def _csv_headers(report_currency: str | None, warnings: list[str]) -> dict[str, str]:
    headers = {"X-Report-Currency": report_currency or ""}
    if warnings:
        # Ids and currency codes are ASCII; the prose is too.
        headers["X-Report-Warnings"] = " | ".join(warnings).encode("ascii", "replace").decode()
    return headers


async def _common(
    request: Request,
    session: ReadSessionDep,
    principal: Principal,
    errors: QueryErrors,
    *,
    from_: str | None,
    to: str | None,
    model: str | None,
    output: str | None,
    include_inactive: str | None,
) -> tuple[Rules, Common]:
    settings = request.app.state.settings
    await repository.begin_snapshot(session)  # before the first query of the request
    rules = await load_rules(
        session, principal.tenant_id, settings.secret, with_webhook_secret=False
    )
    common = parse_common(
        errors,
        from_=from_,
        to=to,
        model=model,
        output=output,
        include_inactive=include_inactive,
        accept=request.headers.get("accept"),
        default_model=rules.default_model,
        max_days=settings.max_report_days,
        now=utcnow(),
    )
    return rules, common


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
async def ads(
    request: Request,
    principal: Reader,
    session: ReadSessionDep,
    from_: FromParam = None,
    to: ToParam = None,
    model: ModelParam = None,
    campaign_id: Annotated[str | None, Query(description="Only this campaign's ads")] = None,
    format: FormatParam = None,
    table: Annotated[
        str | None,
        Query(description="CSV only: rows (default) or by_format", json_schema_extra=_enum(TABLES)),
    ] = None,
    include_inactive: InactiveParam = None,
) -> Response:
    errors = QueryErrors()
    rules, common = await _common(
        request,
        session,
        principal,
        errors,
        from_=from_,
        to=to,
        model=model,
        output=format,
        include_inactive=include_inactive,
    )
    campaign = parse_id("campaign_id", campaign_id, errors)
    chosen_table = parse_choice("table", table, TABLES, errors) or "rows"
    errors.check()
    report = await bounded(
        service.ads_report(session, principal.tenant_id, rules, common, campaign_id=campaign),
        _timeout(request),
        session=session,
    )
    if common.output == "csv":
        if chosen_table == "by_format":
            return csv_response(
                FORMAT_COLUMNS,
                report.by_format,
                filename=f"ads-by-format-{_stamp(common)}.csv",
                headers=_csv_headers(report.currency, report.warnings),
            )
        return csv_response(
            AD_COLUMNS,
            report.rows,
            filename=f"ads-{_stamp(common)}.csv",
            headers=_csv_headers(report.currency, report.warnings),
        )
    return _json(
        {
            **report.header(),
            "rows": report.rows,
            "by_format": report.by_format,
            "warnings": report.warnings,
        }
    )


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
    request: Request,
    principal: Reader,
    session: ReadSessionDep,
    from_: FromParam = None,
    to: ToParam = None,
    model: ModelParam = None,
    kind: Annotated[
        str | None, Query(description="video or live", json_schema_extra=_enum(("video", "live")))
    ] = None,
    platform: Annotated[
        str | None,
        Query(description="The account's platform", json_schema_extra=_enum(PLATFORM_CHOICES)),
    ] = None,
    account_id: Annotated[str | None, Query(description="Only this account's contents")] = None,
    format: FormatParam = None,
    include_inactive: InactiveParam = None,
) -> Response:
    errors = QueryErrors()
    rules, common = await _common(
        request,
        session,
        principal,
        errors,
        from_=from_,
        to=to,
        model=model,
        output=format,
        include_inactive=include_inactive,
    )
    chosen_kind = parse_choice("kind", kind, service.CONTENT_KINDS, errors)
    chosen_platform = parse_choice("platform", platform, PLATFORM_CHOICES, errors)
    account = parse_id("account_id", account_id, errors)
    errors.check()
    report = await bounded(
        service.contents_report(
            session,
            principal.tenant_id,
            rules,
            common,
            kind=chosen_kind,
            platform=chosen_platform,
            account_id=account,
        ),
        _timeout(request),
        session=session,
    )
    if common.output == "csv":
        return csv_response(
            CONTENT_COLUMNS,
            report.rows,
            filename=f"contents-{_stamp(common)}.csv",
            headers=_csv_headers(report.currency, report.warnings),
        )
    return _json({**report.header(), "rows": report.rows, "warnings": report.warnings})


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
    request: Request,
    principal: Reader,
    session: ReadSessionDep,
    metric: Annotated[
        str | None, Query(description="The metric", json_schema_extra=_enum(service.METRICS))
    ] = None,
    interval: Annotated[
        str | None, Query(description="hour or day (default)", json_schema_extra=_enum(INTERVALS))
    ] = None,
    from_: FromParam = None,
    to: ToParam = None,
    model: ModelParam = None,
    content_id: Annotated[str | None, Query(description="Only this content")] = None,
    ad_id: Annotated[str | None, Query(description="Only this ad")] = None,
    format: FormatParam = None,
    include_inactive: InactiveParam = None,
) -> Response:
    errors = QueryErrors()
    rules, common = await _common(
        request,
        session,
        principal,
        errors,
        from_=from_,
        to=to,
        model=model,
        output=format,
        include_inactive=include_inactive,
    )
    if metric is None:
        errors.add("metric", f"is required; use one of: {', '.join(service.METRICS)}")
    chosen_metric = parse_choice("metric", metric, service.METRICS, errors)
    chosen_interval = parse_choice("interval", interval, INTERVALS, errors) or "day"
    content = parse_id("content_id", content_id, errors)
    ad = parse_id("ad_id", ad_id, errors)
    errors.check()
    assert chosen_metric is not None
    series = await bounded(
        service.timeseries(
            session,
            principal.tenant_id,
            rules,
            common,
            metric=chosen_metric,
            interval="hour" if chosen_interval == "hour" else "day",
            content_id=content,
            ad_id=ad,
        ),
        _timeout(request),
        session=session,
    )
    if common.output == "csv":
        return csv_response(
            POINT_COLUMNS,
            series.points,
            filename=f"timeseries-{chosen_metric}-{chosen_interval}-{_stamp(common)}.csv",
            headers={"X-Report-Currency": series.currency or ""},
        )
    return _json({**series.header(), "points": series.points})
