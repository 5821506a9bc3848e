"""How a change of the catalog feed becomes a row of the local read model (pure, no I/O).

Each feed entity lands in one read-model table. The table says what to take from the change's
``data``: one field per column (by the column's name, or renamed), converted and checked by the
column's type, so that a value the table cannot hold is refused here, the same way on every
database, with a reason a person can act on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column, Date, Integer, String, Table

from services.attribution.models import Base
from services.attribution.models import catalog as tables
from shared.db import MoneyType, UTCDateTime

# NUMERIC(18,4): at most 14 digits before the point.
_MONEY_LIMIT = Decimal(10) ** 14


class Unappliable(ValueError):
    """A change the read model cannot take; the message says why."""


@dataclass(frozen=True)
class Projection:
    """One feed entity's read-model table; ``renames`` maps a column to its field in ``data``."""

    model: type[Base]
    renames: Mapping[str, str] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__  # type: ignore[assignment]  # declared models map a Table
        return table

    def source(self, column: str) -> str:
        return self.renames.get(column, column)


PROJECTIONS: dict[str, Projection] = {
    "account": Projection(tables.CatalogAccount),
    "content": Projection(tables.CatalogContent),
    "product": Projection(tables.CatalogProduct),
    "content_product": Projection(tables.CatalogContentProduct),
    "campaign": Projection(tables.CatalogCampaign),
    "ad": Projection(tables.CatalogAd),
    "ad_spend": Projection(tables.CatalogAdSpend),
    "tracking_link": Projection(tables.CatalogTrackingLink, {"code": "id"}),
}


@dataclass(frozen=True)
class Change:
    """What a feed entry says about one object (its ``seq`` stays with the entry)."""

    tenant_id: str
    entity: str
    id: str
    op: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Row:
    """What one change does to the read model: upsert ``values`` at ``key``, or delete it."""

    table: Table
    key: dict[str, Any]
    values: dict[str, Any] | None  # None: delete


def parse_change(raw: Any) -> Change:
    """A feed entry checked for shape; :class:`Unappliable` when it is not one."""
    if not isinstance(raw, dict):
        raise Unappliable(f"a change must be a JSON object, got {type(raw).__name__}")
    problems = [
        f"`{name}` must be {kind.__name__}"
        for name, kind in (("tenant_id", str), ("entity", str), ("id", str), ("op", str))
        if not isinstance(raw.get(name), kind)
    ]
    data = raw.get("data")
    if not isinstance(data, dict):
        problems.append("`data` must be an object")
    if problems:
        raise Unappliable("; ".join(problems))
    return Change(
        tenant_id=raw["tenant_id"],
        entity=raw["entity"],
        id=raw["id"],
        op=raw["op"],
        data=data,  # type: ignore[arg-type]  # checked to be a dict above
    )


def project(change: Change) -> Row | None:
    """The read-model row of ``change``; None for an entity this service does not keep (a newer
    catalog). Raises :class:`Unappliable` for a change it cannot take."""
    projection = PROJECTIONS.get(change.entity)
    if projection is None:
        return None
    if change.op not in ("upsert", "delete"):
        raise Unappliable(f"unknown op {change.op!r} (expected upsert or delete)")
    table = projection.table
    key = {"tenant_id": change.tenant_id}
    id_parts = change.id.split("/")
    key_columns = [c for c in table.primary_key.columns if c.name != "tenant_id"]
    for position, column in enumerate(key_columns):
        name = projection.source(column.name)
        # A delete carries its key in data; the change's id ("ad/day") says it too.
        fallback = id_parts[position] if len(id_parts) == len(key_columns) else None
        key[column.name] = convert(column, name, change.data.get(name, fallback))
    if change.op == "delete":
        return Row(table, key, None)
    values = {}
    for column in table.columns:
        if column.name not in key:
            name = projection.source(column.name)
            values[column.name] = convert(column, name, change.data.get(name))
    return Row(table, key, values)


def convert(column: Column[Any], name: str, value: Any) -> Any:
    """``value`` of field ``name`` as ``column`` stores it; :class:`Unappliable` if it can't."""
    if value is None:
        if not column.nullable:
            raise Unappliable(f"`{name}` is missing")
        return None
    kind = column.type
    try:
        if isinstance(kind, UTCDateTime):
            return _instant(value)
        if isinstance(kind, MoneyType):
            return _money(value)
        if isinstance(kind, Date):
            return dt.date.fromisoformat(_text(value))
        if isinstance(kind, Integer):
            if type(value) is not int:
                raise Unappliable(f"must be an integer, got {value!r}")
            return value
        if isinstance(kind, String):
            text = _text(value)
            if kind.length is not None and len(text) > kind.length:
                raise Unappliable(f"is {len(text)} characters, longer than {kind.length}")
            if "\x00" in text:
                raise Unappliable("contains a NUL character")
            return text
    except Unappliable as exc:
        raise Unappliable(f"`{name}` {exc}") from None
    except ValueError as exc:
        raise Unappliable(f"`{name}` {value!r} is not valid: {exc}") from None
    return value  # JSON documents are kept as sent


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise Unappliable(f"must be a string, got {type(value).__name__}")
    return value


def _instant(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(_text(value))
    if parsed.utcoffset() is None:
        raise Unappliable(f"{value!r} has no timezone offset")
    return parsed.astimezone(dt.UTC)


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(_text(value))
    except InvalidOperation:
        raise Unappliable(f"{value!r} is not a decimal") from None
    if not amount.is_finite() or abs(amount) >= _MONEY_LIMIT:
        raise Unappliable(f"{value!r} is not an amount the read model can hold")
    return amount
