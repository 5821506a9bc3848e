"""Pydantic building blocks shared by both services' schemas."""

from __future__ import annotations

import datetime as dt
import types
import typing
from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from shared.currencies import canonical_money, is_currency

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def _leaf_types(annotation: Any) -> set[Any]:
    """The plain types an annotation admits (``Annotated[int, …] | None`` -> {int, None})."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_leaf_types(arg) for arg in typing.get_args(annotation)))
    return {annotation}


class Schema(BaseModel):
    """Base of every request schema: unknown fields are refused, not silently dropped, and a
    number field takes a JSON number only (pydantic's lax mode would read ``true`` as 1 and
    ``"5"`` as 5, which the published schema does not allow)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, populate_by_name=True)
    #: This class's int and float fields (not bool ones), found once when the class is made.
    _number_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._number_fields = frozenset(
            name
            for name, info in cls.model_fields.items()
            if (leaves := _leaf_types(info.annotation)) & {int, float} and bool not in leaves
        )

    @field_validator("*", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool | str) and info.field_name in cls._number_fields:
            raise ValueError(f"must be a JSON number, not {type(value).__name__} {value!r}")
        return value


class OutSchema(BaseModel):
    """Base of response schemas (built from ORM rows)."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


SchemaT = TypeVar("SchemaT", bound=BaseModel)


def from_row(schema: type[SchemaT], row: object, **values: Any) -> SchemaT:
    """``schema`` from ``row``'s attributes of the same names; ``values`` give the others
    (or replace a row's value)."""
    return schema.model_validate(
        {
            name: values[name] if name in values else getattr(row, name)
            for name in schema.model_fields
        }
    )


def format_utc(value: dt.datetime) -> str:
    """UTC with a `Z`, microseconds only when present: ``0070-09-12T19:30:26Z``.

    ``isoformat`` always writes four-digit years (``strftime("%Y")`` does not below 1000, which
    no ISO-8601 reader takes back).
    """
    return value.astimezone(dt.UTC).isoformat().removesuffix("+00:00") + "Z"


# The instants an API takes: from the Unix epoch to the end of year 9999, in UTC. Earlier
# ones are typing mistakes (a two-digit year), and a bound keeps them out of the feed and
# out of every store.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _to_utc(value: dt.datetime) -> dt.datetime:
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(
            "is out of range once converted to UTC; send an instant from "
            f"{format_utc(EARLIEST)} to {format_utc(LATEST)}"
        ) from None
    if value < EARLIEST:
        raise ValueError(
            f"{format_utc(value)} is before {format_utc(EARLIEST)}; send an instant from "
            f"{format_utc(EARLIEST)} to {format_utc(LATEST)}"
        )
    return value


ClientId = Annotated[
    str,
    StringConstraints(pattern=ID_PATTERN),
    Field(description="Client-chosen id: letters, digits and . _ : - (1–128 characters)."),
]

# Input: ISO-8601 with an offset (naive is refused), from EARLIEST to LATEST; output: UTC
# with Z.
UTCDatetime = Annotated[
    AwareDatetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
# Output only (models built from stored rows): written like UTCDatetime, never re-checked, so a
# row stored before the input bound existed still reads.
UTCDatetimeOut = Annotated[
    AwareDatetime, PlainSerializer(format_utc, return_type=str, when_used="json")
]


def _check_currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO-4217 currency code (e.g. CNY, USD, EUR)")
    return value


Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3),
    AfterValidator(_check_currency),
    Field(description="ISO-4217 currency code, e.g. CNY", examples=["CNY"]),
]


def _finite_non_negative(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite decimal")
    if value < 0:
        raise ValueError("must not be negative")
    return value


def money_to_str(value: Decimal) -> str:
    return format(canonical_money(value), "f")


# Money on the wire is a decimal string ("129.90"); a JSON number is accepted on input too.
Money = Annotated[
    Decimal,
    Field(max_digits=18, decimal_places=4, description='Decimal string, e.g. "129.90"'),
    AfterValidator(_finite_non_negative),
    PlainSerializer(money_to_str, return_type=str, when_used="json"),
]
MoneyOut = Annotated[Decimal, PlainSerializer(money_to_str, return_type=str, when_used="json")]


def jsonable(value: Any) -> Any:
    """orjson default hook for our types."""
    if isinstance(value, Decimal):
        return money_to_str(value)
    if isinstance(value, dt.datetime):
        return format_utc(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
