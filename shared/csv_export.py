"""RFC 4180 CSV for reports, streamed a chunk of rows at a time (never one big string)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
ROWS_PER_CHUNK = 500

# What a report answers in: ``format=json`` (the default) or ``format=csv``.
ExportFormat = Literal["json", "csv"]
# The OpenAPI description of such a report's 200.
CSV_OR_JSON: dict[str, Any] = {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "JSON, or CSV with `format=csv`",
}


def cell(value: Any) -> str:
    """A JSON row value as CSV text: null → empty, money as its decimal string."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # amounts arrive quantized to their currency
    if isinstance(value, float):
        return repr(value)
    return str(value)


def iter_csv(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, chunk_rows: int = ROWS_PER_CHUNK
) -> Iterator[str]:
    """The header line, then the rows, ``chunk_rows`` lines per yielded piece; CRLF endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    pending = 0
    for row in rows:
        writer.writerow([cell(row[column]) for column in columns])
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate(0)
            pending = 0
    yield buffer.getvalue()


def csv_response(
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    filename: str,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    return StreamingResponse(
        iter_csv(columns, rows),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})},
    )


def export_response(
    format: ExportFormat,
    answer: BaseModel,
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    filename: str,
) -> Response:
    """``answer`` as JSON, or ``rows`` (lazily: an iterator is only read for CSV) as CSV."""
    if format == "csv":
        return csv_response(columns, rows, filename=filename)
    return Response(answer.model_dump_json(), media_type="application/json")
