"""How a report is written: JSON (the report model, encoded by FastAPI) or CSV.

CSV is chosen by ``format=csv``, or by ``Accept: text/csv`` when ``format`` is absent. A CSV
report is one table (its rows) with the report's currency, and its warnings if any, in
headers; the file is named after the report and its range.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from services.attribution.reports.query import Output, Table
from services.attribution.reports.schemas import (
    AD_COLUMNS,
    CONTENT_COLUMNS,
    FORMAT_COLUMNS,
    POINT_COLUMNS,
    AdsReport,
    ContentsReport,
    Timeseries,
)
from shared.csv_export import csv_response


def output(format: Output | None, accept: str | None) -> Output:
    """What to write: ``format`` when given, else CSV when ``Accept`` prefers text/csv."""
    if format is not None:
        return format
    return "csv" if _prefers_csv(accept) else "json"


def _prefers_csv(accept: str | None) -> bool:
    if not accept:
        return False
    types = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    return "text/csv" in types and (
        "application/json" not in types or types.index("text/csv") < types.index("application/json")
    )


class Ranged(Protocol):
    """A report over a range: what its CSV file is named after."""

    @property
    def from_(self) -> dt.datetime: ...
    @property
    def to(self) -> dt.datetime: ...


def stamp(report: Ranged) -> str:
    """The report's range as it stands in a CSV file name: ``20260301T000000Z-20260401T000000Z``."""
    return f"{report.from_:%Y%m%dT%H%M%SZ}-{report.to:%Y%m%dT%H%M%SZ}"


def _csv(
    name: str,
    columns: tuple[str, ...],
    rows: Iterable[BaseModel],
    report: AdsReport | ContentsReport | Timeseries,
    warnings: list[str],
) -> StreamingResponse:
    headers = {"X-Report-Currency": report.currency or ""}
    if warnings:
        # Ids and currency codes are ASCII; the prose is too.
        headers["X-Report-Warnings"] = " | ".join(warnings).encode("ascii", "replace").decode()
    return csv_response(
        columns,
        (row.model_dump(mode="json") for row in rows),  # the JSON's values, cell by cell
        filename=f"{name}-{stamp(report)}.csv",
        headers=headers,
    )


def ads_csv(report: AdsReport, table: Table) -> StreamingResponse:
    if table == "by_format":
        return _csv("ads-by-format", FORMAT_COLUMNS, report.by_format, report, report.warnings)
    return _csv("ads", AD_COLUMNS, report.rows, report, report.warnings)


def contents_csv(report: ContentsReport) -> StreamingResponse:
    return _csv("contents", CONTENT_COLUMNS, report.rows, report, report.warnings)


def timeseries_csv(series: Timeseries) -> StreamingResponse:
    name = f"timeseries-{series.metric}-{series.interval}"
    return _csv(name, POINT_COLUMNS, series.points, series, [])
