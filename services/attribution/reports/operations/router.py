"""``GET /v1/reports/{interactions,scorecard,activities}``: thin HTTP over ``service.py``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel

from services.attribution.reports import render
from services.attribution.reports.operations import service
from services.attribution.reports.operations.query import (
    InteractionsQuery,
    RangeQuery,
    ScorecardQuery,
)
from services.attribution.reports.operations.schemas import (
    ACCOUNT_COLUMNS,
    ACTIVITY_COLUMNS,
    CONTENT_COLUMNS,
    DAY_COLUMNS,
    SCORECARD_COLUMNS,
    UNANSWERED_COLUMNS,
    ActivitiesReport,
    InteractionsReport,
    Scorecard,
)
from services.attribution.reports.operations.scorecard import GROUPS, METRICS
from services.attribution.reports.router import Reports, _invalid, _responses
from shared.csv_export import csv_response
from shared.errors import validation_route

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=validation_route(_invalid))


@router.get(
    "/interactions",
    response_model=InteractionsReport,
    summary="Do we answer our viewers, and how fast: replies to comments and dms",
    description="Per account, per content, per local day (tenant timezone) and in total, over "
    "the comments and dms that occurred in the range. A comment is answered by its earliest "
    "`reply` event (`reply_to` = the comment's `event_id`, at any time); reply time = that "
    "reply's `occurred_at` − the comment's (0 if earlier). `reply_rate_1h` = comments first "
    "answered within 3,600 s / comments, `reply_rate_24h` the same within 86,400 s; "
    "`median_reply_seconds` and `p90_reply_seconds` over answered comments (linear between "
    "closest ranks). DMs likewise with `dm_reply`: `dm_reply_rate` = dms answered / dms. A "
    "comment counts in its content's account (catalog). `unanswered` lists comments without "
    "any reply older than 24 h, oldest first, paged by `limit`/`cursor`; `unmatched_replies` "
    "lists replies whose comment or dm is not stored (yet). Rates are null when nothing was "
    "asked. CSV gives `table=accounts` (default), `contents`, `days` or `unanswered`.",
    responses=_responses(InteractionsReport),
)
async def interactions(
    reports: Reports, query: Annotated[InteractionsQuery, Query()]
) -> InteractionsReport | Response:
    report = await reports.run(
        query.as_report_query(),
        lambda db, tenant, s: service.interactions_report(
            db, tenant, s.rules, s.scope, query, now=s.now
        ),
    )
    if not reports.csv(query.format):
        return report
    tables: dict[str, tuple[tuple[str, ...], Sequence[BaseModel]]] = {
        "accounts": (ACCOUNT_COLUMNS, report.accounts),
        "contents": (CONTENT_COLUMNS, report.contents),
        "days": (DAY_COLUMNS, report.days),
        "unanswered": (UNANSWERED_COLUMNS, report.unanswered.items),
    }
    columns, rows = tables[query.table]
    return csv_response(
        columns,
        (row.model_dump(mode="json") for row in rows),
        filename=f"interactions-{query.table}-{render.stamp(report)}.csv",
    )


_SCORECARD_METRICS = "; ".join(
    f"**{group}**: " + ", ".join(f"`{m.name}` = {m.formula}" for m in METRICS if m.group == group)
    for group in GROUPS
)


@router.get(
    "/scorecard",
    response_model=Scorecard,
    summary="The 4C scorecard: consumer, cost, convenience and communication per item",
    description="For each account, content or campaign (`level`) with events, credits or "
    "spend in the range, four groups of metrics, each with its `value`, its `percentile` "
    "among the level's items of the range and its `change` against the previous period of "
    "equal length (`previous_from` … `from`). Events and credits belong to a content by "
    "their `content_id`, to an account through that content, to a campaign through their "
    "`ad_id`'s ad; spend (catalog, local days of the tenant timezone that begin in the "
    "range, in the report currency; other currencies are left out and named in `warnings`) "
    "goes from its ad to the ad's content, account or campaign. Orders and GMV are the "
    "credits of the tenant's model for orders paid in the range. A ratio whose denominator "
    "is zero is null, never 0; money is a decimal string in the report currency. "
    f"Metrics: {_SCORECARD_METRICS}. CSV: one row per item and metric.",
    responses=_responses(Scorecard),
)
async def scorecard(
    reports: Reports, query: Annotated[ScorecardQuery, Query()]
) -> Scorecard | Response:
    report = await reports.run(
        query.as_report_query(),
        lambda db, tenant, s: service.scorecard_report(db, tenant, s.rules, s.scope, query.level),
    )
    if not reports.csv(query.format):
        return report
    return csv_response(
        SCORECARD_COLUMNS,
        _scorecard_rows(report),
        filename=f"scorecard-{report.level}-{render.stamp(report)}.csv",
    )


def _scorecard_rows(report: Scorecard) -> Iterator[dict[str, Any]]:
    for item in report.items:
        dumped = item.model_dump(mode="json")
        for spec in METRICS:
            score = dumped[spec.group][spec.name]
            yield {
                "id": item.id,
                "name": item.name,
                "group": spec.group,
                "metric": spec.name,
                **score,
            }


@router.get(
    "/activities",
    response_model=ActivitiesReport,
    summary="Engagement activities (Q&A, lucky draw, topic, challenge) against the time before",
    description="Every catalog campaign with `objective: engagement`, an `activity` and a "
    "`starts_at` that runs at some time in the range. Its window runs from `starts_at` to "
    "`ends_at` (now while it runs, or when it has no end); it is compared with the window of "
    "the same length just before `starts_at`. Over each window, the events on the contents "
    "of the campaign's ads: `engagement_rate` = (likes + comments + shares) / views, "
    "`comments_per_1000_views` = comments / views × 1000, `follows` = new `follow` events; "
    "`change` = (during − before) / |before|. Ratios over nothing are null. CSV: one row "
    "per activity.",
    responses=_responses(ActivitiesReport),
)
async def activities(
    reports: Reports, query: Annotated[RangeQuery, Query()]
) -> ActivitiesReport | Response:
    report = await reports.run(
        query.as_report_query(),
        lambda db, tenant, s: service.activities_report(db, tenant, s.scope, now=s.now),
    )
    if not reports.csv(query.format):
        return report
    return csv_response(
        ACTIVITY_COLUMNS, _activity_rows(report), filename=f"activities-{render.stamp(report)}.csv"
    )


def _activity_rows(report: ActivitiesReport) -> Iterator[dict[str, Any]]:
    for row in report.activities:
        dumped = row.model_dump(mode="json")
        flat = {key: value for key, value in dumped.items() if not isinstance(value, dict)}
        flat["content_ids"] = " ".join(row.content_ids)
        for part in ("during", "before", "change"):
            flat |= {f"{part}_{name}": value for name, value in dumped[part].items()}
        yield flat
