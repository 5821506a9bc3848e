"""A ``[from, to)`` range of instants as report query parameters (``from`` is a keyword)."""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, Field, model_validator

MAX_RANGE = dt.timedelta(days=366)


class RangeQuery(BaseModel):
    """``from`` and ``to`` with offsets, ``to`` after ``from``, at most a year apart."""

    model_config = {"populate_by_name": True, "extra": "forbid"}

    from_: AwareDatetime = Field(alias="from", description="Range start (inclusive), with offset")
    to: AwareDatetime = Field(description="Range end (exclusive), with offset")

    @model_validator(mode="after")
    def _range(self) -> RangeQuery:
        for value in (self.from_, self.to):
            if not 1970 <= value.year <= 9998:
                raise ValueError("from and to must fall in the years 1970 to 9998")
        if self.to <= self.from_:
            raise ValueError("to must be after from")
        if self.to - self.from_ > MAX_RANGE:
            raise ValueError(f"the range may span at most {MAX_RANGE.days} days")
        return self

    def utc(self) -> tuple[dt.datetime, dt.datetime]:
        return self.from_.astimezone(dt.UTC), self.to.astimezone(dt.UTC)
