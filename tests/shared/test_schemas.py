"""Timestamps on the wire: ISO-8601 in UTC with a `Z`, four-digit years, a bounded input range."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import BaseModel, ValidationError

from shared.schemas import UTCDatetime, UTCDatetimeOut, format_utc


class In(BaseModel):
    at: UTCDatetime


class Out(BaseModel):
    at: UTCDatetimeOut


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.datetime(70, 9, 12, 19, 30, 26, tzinfo=dt.UTC), "0070-09-12T19:30:26Z"),
        (dt.datetime(1, 1, 1, tzinfo=dt.UTC), "0001-01-01T00:00:00Z"),
        (
            dt.datetime(2024, 6, 18, 20, 15, tzinfo=dt.timezone(dt.timedelta(hours=8))),
            "2024-06-18T12:15:00Z",
        ),
        (dt.datetime(2024, 6, 18, 12, 15, 0, 5, tzinfo=dt.UTC), "2024-06-18T12:15:00.000005Z"),
        (dt.datetime.max.replace(tzinfo=dt.UTC), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_format_utc_writes_what_fromisoformat_reads_back(value: dt.datetime, text: str) -> None:
    assert format_utc(value) == text
    assert dt.datetime.fromisoformat(text) == value


@pytest.mark.parametrize(
    "text", ["1970-01-01T00:00:00Z", "1970-01-01T08:00:00+08:00", "9999-12-31T23:59:59Z"]
)
def test_the_edges_of_the_range_are_taken(text: str) -> None:
    assert In.model_validate({"at": text}).at == dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0070-09-12T19:30:26Z", "0070-09-12T19:30:26Z is before 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00+00:01", "1969-12-31T23:59:00Z is before 1970-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59-00:01", "out of range once converted to UTC"),
        ("0001-01-01T00:00:00+01:00", "out of range once converted to UTC"),
    ],
)
def test_instants_outside_the_range_are_refused_saying_which_range(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        In.model_validate({"at": text})
    error = caught.value.errors()[0]["msg"]
    assert message in error
    assert "from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z" in error


def test_an_output_field_writes_a_stored_instant_outside_the_input_range() -> None:
    # Rows stored before the bound existed must still read.
    stored = dt.datetime(70, 9, 12, 19, 30, 26, tzinfo=dt.UTC)
    assert Out(at=stored).model_dump(mode="json") == {"at": "0070-09-12T19:30:26Z"}
