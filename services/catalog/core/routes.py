"""Route factory for the catalog's PUT/GET/LIST/DELETE-by-id entities.

Annotations here are evaluated eagerly (no ``from __future__ import annotations``) because
FastAPI reads the concrete body and response types from each generated endpoint.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status

from services.catalog.core.crud import EntitySpec, get_or_404, list_page, soft_delete, upsert
from shared.app import SessionDep
from shared.auth import Principal, require_scope
from shared.pagination import Page, PageParams, page_params
from shared.schemas import ID_PATTERN, Schema

Reader = Annotated[Principal, Depends(require_scope("catalog:read"))]
Writer = Annotated[Principal, Depends(require_scope("catalog:write"))]
IdPath = Annotated[str, Path(pattern=ID_PATTERN, description="Client-chosen id")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token (problem+json)"},
    403: {"description": "Token lacks the scope (problem+json)"},
    404: {"description": "No such object in this tenant (problem+json)"},
    422: {"description": "Invalid input (problem+json with `errors`)"},
}

ValuesFrom = Callable[[Any], dict[str, Any]]


def default_values(body: Schema) -> dict[str, Any]:
    return body.model_dump()


def entity_router(
    spec: EntitySpec,
    *,
    plural: str,
    body_schema: type[Schema],
    tag: str,
    values_from: ValuesFrom = default_values,
) -> APIRouter:
    router = APIRouter(prefix=f"/v1/{plural}", tags=[tag], responses=ERRORS)
    out = spec.out_schema
    # The path names the entity ({account_id}, {ad_id}…) as the contract writes it.
    id_name = f"{spec.entity}_id"
    item = "/{" + id_name + "}"
    ItemId = Annotated[str, Path(alias=id_name, pattern=ID_PATTERN, description="Client-chosen id")]

    @router.put(
        item,
        response_model=out,
        status_code=status.HTTP_200_OK,
        summary=f"Create or replace a {spec.label}",
        description="201 when created, 200 when replaced or identical (an identical PUT changes "
        "nothing, not even `updated_at`).",
        responses={201: {"description": "Created", "model": out}},
    )
    async def put_item(
        item_id: ItemId,
        body: body_schema,  # type: ignore[valid-type]
        principal: Writer,
        session: SessionDep,
        response: Response,
    ) -> Any:
        obj, outcome = await upsert(
            session, spec, principal.tenant_id, {"id": item_id}, values_from(body)
        )
        await session.commit()
        response.status_code = 201 if outcome == "created" else 200
        return out.model_validate(obj)

    @router.get("", response_model=Page[out], summary=f"List {plural}")  # type: ignore[valid-type]
    async def list_items(
        principal: Reader,
        session: SessionDep,
        page: Annotated[PageParams, Depends(page_params)],
    ) -> Any:
        rows, cursor = await list_page(session, spec, principal.tenant_id, page)
        return {"items": [out.model_validate(r) for r in rows], "next_cursor": cursor}

    @router.get(item, response_model=out, summary=f"Read a {spec.label}")
    async def get_item(item_id: ItemId, principal: Reader, session: SessionDep) -> Any:
        return out.model_validate(
            await get_or_404(session, spec, principal.tenant_id, {"id": item_id})
        )

    @router.delete(
        item,
        status_code=status.HTTP_204_NO_CONTENT,
        summary=f"Delete a {spec.label} (soft: it leaves the lists and the feed says so)",
    )
    async def delete_item(item_id: ItemId, principal: Writer, session: SessionDep) -> Response:
        await soft_delete(session, spec, principal.tenant_id, {"id": item_id})
        await session.commit()
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
