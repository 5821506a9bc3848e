"""RFC 4180 CSV for reports, streamed a chunk of rows at a time (never one big string)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
ROWS_PER_CHUNK = 500


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
