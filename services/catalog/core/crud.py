"""Tenant-scoped create-or-replace, read, list and soft delete for every catalog entity.

Each entity is described once by an ``EntitySpec``; the functions here do the rest and record
every effective change in the feed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Date, Select, and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.changes.service import lock_feed, record_change
from services.catalog.models import Base
from shared.db import assign, utcnow
from shared.errors import UnprocessableEntity, found
from shared.pagination import PageParams, decode_cursor, encode_cursor
from shared.schemas import OutSchema

Outcome = Literal["created", "replaced", "unchanged"]


@dataclass(frozen=True)
class Reference:
    """A field that must name a live object of the same tenant."""

    field: str
    model: type[Base]

    @property
    def label(self) -> str:
        return self.model.__name__.lower()  # "campaign", "content"…


def references(**fields: type[Base]) -> tuple[Reference, ...]:
    """``references(campaign_id=Campaign)``: each field names an object of that model."""
    return tuple(Reference(name, model) for name, model in fields.items())


@dataclass(frozen=True)
class EntitySpec:
    entity: str  # name in the change feed, e.g. "ad_spend"
    model: type[Base]
    out_schema: type[OutSchema]
    key_fields: tuple[str, ...] = ("id",)
    references: tuple[Reference, ...] = field(default_factory=tuple)
    name: str | None = None  # for people when not the entity's name: "content–product link"

    @property
    def label(self) -> str:
        return self.name or self.entity.replace("_", " ")  # "ad spend"

    def key_columns(self) -> list[Any]:
        return [getattr(self.model, name) for name in self.key_fields]

    def entity_id(self, key: Mapping[str, Any]) -> str:
        return "/".join(str(key[name]) for name in self.key_fields)


def snapshot(spec: EntitySpec, obj: Base) -> dict[str, Any]:
    return spec.out_schema.model_validate(obj).model_dump(mode="json")


async def feed(
    session: AsyncSession, spec: EntitySpec, tenant_id: str, obj: Any, *, deleted: bool = False
) -> None:
    """Flush ``obj`` and record it in the change feed: its snapshot, or its key once deleted."""
    await session.flush()
    key = {name: getattr(obj, name) for name in spec.key_fields}
    await record_change(
        session,
        tenant_id=tenant_id,
        entity=spec.entity,
        entity_id=spec.entity_id(key),
        op="delete" if deleted else "upsert",
        # A delete's key is JSON-safe (an ad spend's day is a date), as the snapshot writes it.
        data={n: _cursor_value(v) for n, v in key.items()} if deleted else snapshot(spec, obj),
    )


def _key_filter(spec: EntitySpec, tenant_id: str, key: Mapping[str, Any]) -> Any:
    model: Any = spec.model
    clauses = [model.tenant_id == tenant_id]
    clauses += [getattr(model, name) == key[name] for name in spec.key_fields]
    return and_(*clauses)


async def check_references(
    session: AsyncSession, tenant_id: str, spec: EntitySpec, values: Mapping[str, Any]
) -> None:
    errors: list[dict[str, Any]] = []
    for ref in spec.references:
        value = values.get(ref.field)
        if value is None:
            continue
        model: Any = ref.model
        found = await session.scalar(
            select(model.id).where(
                model.tenant_id == tenant_id, model.id == value, model.deleted_at.is_(None)
            )
        )
        if found is None:
            errors.append(
                {
                    "loc": ["path" if ref.field in spec.key_fields else "body", ref.field],
                    "field": ref.field,
                    "msg": f"no {ref.label} with id {value!r} exists; create it first",
                }
            )
    if errors:
        raise UnprocessableEntity(
            "The request refers to objects that do not exist: "
            + "; ".join(f"{e['field']}: {e['msg']}" for e in errors),
            errors=errors,
        )


async def load(
    session: AsyncSession,
    spec: EntitySpec,
    tenant_id: str,
    key: Mapping[str, Any],
    *,
    include_deleted: bool = False,
    for_update: bool = False,
) -> Any:
    stmt: Select[Any] = select(spec.model).where(_key_filter(spec, tenant_id, key))
    if for_update:
        stmt = stmt.with_for_update()
    obj = await session.scalar(stmt)
    if obj is None or (obj.deleted_at is not None and not include_deleted):
        return None
    return obj


def _missing(spec: EntitySpec, key: Mapping[str, Any]) -> str:
    return f"No {spec.label} {spec.entity_id(key)!r} in this tenant."


async def get_or_404(
    session: AsyncSession, spec: EntitySpec, tenant_id: str, key: Mapping[str, Any]
) -> Any:
    return found(await load(session, spec, tenant_id, key), _missing(spec, key))


async def upsert(
    session: AsyncSession,
    spec: EntitySpec,
    tenant_id: str,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
) -> tuple[Any, Outcome]:
    """Create (or revive a soft-deleted object), replace, or leave an identical object alone."""
    await lock_feed(session)
    await check_references(session, tenant_id, spec, {**key, **values})
    obj = await load(session, spec, tenant_id, key, include_deleted=True, for_update=True)
    now = utcnow()
    if obj is None:
        obj = spec.model(tenant_id=tenant_id, created_at=now, updated_at=now, **key, **values)
        session.add(obj)
        outcome: Outcome = "created"
    elif obj.deleted_at is not None:
        assign(obj, values)
        obj.deleted_at = None
        obj.created_at = now
        obj.updated_at = now
        outcome = "created"
    elif assign(obj, values):
        obj.updated_at = now
        outcome = "replaced"
    else:
        return obj, "unchanged"
    await feed(session, spec, tenant_id, obj)
    return obj, outcome


async def soft_delete(
    session: AsyncSession, spec: EntitySpec, tenant_id: str, key: Mapping[str, Any]
) -> None:
    # The feed lock before the row lock, in the same order as upsert, so the two cannot deadlock.
    await lock_feed(session)
    obj = found(await load(session, spec, tenant_id, key, for_update=True), _missing(spec, key))
    now = utcnow()
    obj.deleted_at = now
    obj.updated_at = now
    await feed(session, spec, tenant_id, obj, deleted=True)


async def list_page(
    session: AsyncSession,
    spec: EntitySpec,
    tenant_id: str,
    page: PageParams,
    *,
    filters: Sequence[Any] = (),
) -> tuple[list[Any], str | None]:
    """Keyset pagination over the primary key: stable under concurrent inserts and deletes."""
    model: Any = spec.model
    columns = spec.key_columns()
    stmt = select(model).where(model.tenant_id == tenant_id, model.deleted_at.is_(None), *filters)
    if page.cursor is not None:
        after = decode_cursor(page.cursor)
        # Every key value is written as a string (a day as YYYY-MM-DD); anything else would
        # reach the database as the wrong type.
        if (
            not isinstance(after, list)
            or len(after) != len(columns)
            or not all(isinstance(value, str) for value in after)
        ):
            raise UnprocessableEntity(
                "The cursor does not belong to this list; pass back `next_cursor` unchanged.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
            )
        after = [_from_cursor(col, value) for col, value in zip(columns, after, strict=True)]
        if len(columns) == 1:
            stmt = stmt.where(columns[0] > after[0])
        else:
            stmt = stmt.where(tuple_(*columns) > tuple_(*after))
    stmt = stmt.order_by(*columns).limit(page.limit + 1)
    rows = list(await session.scalars(stmt))
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        last = rows[-1]
        next_cursor = encode_cursor([_cursor_value(getattr(last, n)) for n in spec.key_fields])
    return rows, next_cursor


def _from_cursor(column: Any, value: Any) -> Any:
    if isinstance(column.type, Date) and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise UnprocessableEntity(
                "The cursor is not valid.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
            ) from None
    return value


def _cursor_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
