"""Route factory for the catalog's PUT/GET/LIST/DELETE collections.

A collection is either top-level (``/v1/accounts/{account_id}``) or the child of one object
(``/v1/ads/{ad_id}/spend/{day}``): the same four routes, keyed by the path. A child's parent
must exist in the tenant for PUT and LIST (404 otherwise, like an unknown object).

Annotations here are evaluated eagerly (no ``from __future__ import annotations``) because
FastAPI reads the concrete body, path and response types from each generated endpoint.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import SerializeAsAny

from services.catalog.core.crud import EntitySpec, get_or_404, list_page, soft_delete, upsert
from shared.app import SessionDep
from shared.auth import CatalogReader, CatalogWriter
from shared.pagination import Page, PageDep
from shared.schemas import ID_PATTERN, OutSchema, Schema

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem+json)"},
    403: {"description": "Token lacks the scope (problem+json)"},
    404: {"description": "No such object in this tenant (problem+json)"},
    422: {"description": "Invalid input (problem+json with `errors`)"},
}

ValuesFrom = Callable[[Any], dict[str, Any]]
Key = dict[str, Any]
# A collection's own response schema, chosen at runtime: a page dumps each item with its own
# fields rather than only the base class's.
AnyOut = SerializeAsAny[OutSchema]


def default_values(body: Schema) -> dict[str, Any]:
    return body.model_dump()


def _id_path(name: str) -> Any:  # FastAPI's Path() is typed Any
    """A client id in the path under ``name`` (``{account_id}``, ``{product_id}``…)."""
    return Path(alias=name, pattern=ID_PATTERN, description="Client-chosen id")


@dataclass(frozen=True)
class Operation:
    """One route's name (the OpenAPI operation id starts with it) and summary."""

    name: str
    summary: str


@dataclass(frozen=True)
class Wording:
    put: Operation
    list: Operation
    get: Operation
    delete: Operation
    put_description: str | None = None


@dataclass(frozen=True)
class Parent:
    """A child collection's parent: its spec, where it sits in the URL and in the child's key.

    ``item`` is the path parameter of the child's own key field (a client id by default).
    """

    spec: EntitySpec
    plural: str
    item: Any = None


def top_level_wording(spec: EntitySpec, plural: str) -> Wording:
    return Wording(
        put=Operation("put_item", f"Create or replace a {spec.label}"),
        list=Operation("list_items", f"List {plural}"),
        get=Operation("get_item", f"Read a {spec.label}"),
        delete=Operation(
            "delete_item",
            f"Delete a {spec.label} (soft: it leaves the lists and the feed says so)",
        ),
        put_description="201 when created, 200 when replaced or identical (an identical PUT "
        "changes nothing, not even `updated_at`).",
    )


@dataclass(frozen=True)
class _Paths:
    prefix: str
    item: str
    # Path dependencies: the object's key, and the filters and check that scope its list.
    key: Callable[..., Key]
    scope: Callable[..., Key]


def _top_level_paths(spec: EntitySpec, plural: str) -> _Paths:
    # The path names the entity ({account_id}, {ad_id}…) as the API documents it.
    id_name = f"{spec.entity}_id"
    ItemId = Annotated[str, _id_path(id_name)]

    def key(item_id: ItemId) -> Key:
        return {"id": item_id}

    def scope() -> Key:
        return {}

    return _Paths(f"/v1/{plural}", "/{" + id_name + "}", key, scope)


def _child_paths(spec: EntitySpec, plural: str, parent: Parent) -> _Paths:
    parent_field, item_field = spec.key_fields
    ParentId = Annotated[str, _id_path(parent_field)]
    ItemKey = parent.item or Annotated[str, _id_path(item_field)]

    # ItemKey is chosen at runtime (a client id, or e.g. a day), as FastAPI reads it.
    def key(parent_id: ParentId, item: ItemKey) -> Key:  # type: ignore[valid-type]
        return {parent_field: parent_id, item_field: item}

    def scope(parent_id: ParentId) -> Key:
        return {parent_field: parent_id}

    prefix = f"/v1/{parent.plural}/{{{parent_field}}}/{plural}"
    return _Paths(prefix, "/{" + item_field + "}", key, scope)


def entity_router(
    spec: EntitySpec,
    *,
    plural: str,
    body_schema: type[Schema],
    tag: str | None = None,
    values_from: ValuesFrom = default_values,
    parent: Parent | None = None,
    wording: Wording | None = None,
) -> APIRouter:
    """PUT (create or replace), LIST, GET and DELETE of one collection.

    With ``parent``, the collection lives under one parent object and ``spec.key_fields`` is
    (the parent's id field, the child's own key field). The OpenAPI tag is ``tag``, by default
    the (parent's) plural: a child collection is documented with its parent.
    """
    paths = _top_level_paths(spec, plural) if parent is None else _child_paths(spec, plural, parent)
    words = wording or top_level_wording(spec, plural)
    tag = tag or (parent.plural if parent is not None else plural)
    router = APIRouter(prefix=paths.prefix, tags=[tag], responses=ERRORS)
    out = spec.out_schema
    model: Any = spec.model
    ObjectKey = Annotated[Key, Depends(paths.key)]
    ListScope = Annotated[Key, Depends(paths.scope)]

    async def check_parent(session: SessionDep, tenant_id: str, key: Key) -> None:
        # The parent is the path's: another tenant's (or no) parent is 404, like the list.
        if parent is not None:
            parent_id = key[spec.key_fields[0]]
            await get_or_404(session, parent.spec, tenant_id, {"id": parent_id})

    @router.put(
        paths.item,
        response_model=out,
        status_code=status.HTTP_200_OK,
        name=words.put.name,
        summary=words.put.summary,
        description=words.put_description,
        responses={201: {"description": "Created", "model": out}},
    )
    async def put_item(
        key: ObjectKey,
        body: body_schema,  # type: ignore[valid-type]  # a class chosen at runtime, as FastAPI needs
        principal: CatalogWriter,
        session: SessionDep,
        response: Response,
    ) -> OutSchema:
        await check_parent(session, principal.tenant_id, key)
        obj, outcome = await upsert(session, spec, principal.tenant_id, key, values_from(body))
        await session.commit()
        response.status_code = 201 if outcome == "created" else 200
        return out.model_validate(obj)

    @router.get(
        "",
        response_model=Page[out],  # type: ignore[valid-type]  # a class chosen at runtime
        name=words.list.name,
        summary=words.list.summary,
    )
    async def list_items(
        scope: ListScope,
        principal: CatalogReader,
        session: SessionDep,
        page: PageDep,
    ) -> Page[AnyOut]:
        await check_parent(session, principal.tenant_id, scope)
        filters = [getattr(model, name) == value for name, value in scope.items()]
        rows, cursor = await list_page(session, spec, principal.tenant_id, page, filters=filters)
        return Page[AnyOut](items=[out.model_validate(r) for r in rows], next_cursor=cursor)

    @router.get(paths.item, response_model=out, name=words.get.name, summary=words.get.summary)
    async def get_item(key: ObjectKey, principal: CatalogReader, session: SessionDep) -> OutSchema:
        return out.model_validate(await get_or_404(session, spec, principal.tenant_id, key))

    @router.delete(
        paths.item,
        status_code=status.HTTP_204_NO_CONTENT,
        name=words.delete.name,
        summary=words.delete.summary,
    )
    async def delete_item(
        key: ObjectKey, principal: CatalogWriter, session: SessionDep
    ) -> Response:
        await soft_delete(session, spec, principal.tenant_id, key)
        await session.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
