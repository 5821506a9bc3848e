from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from services.catalog.changes.service import read_changes
from shared.app import SessionDep
from shared.auth import ALL_TENANTS, CatalogSync
from shared.schemas import UTCDatetimeOut

router = APIRouter(prefix="/v1/changes", tags=["change feed"])


# Read from a feed row: its entity_id is written `id`, its created_at `at`.
class ChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    tenant_id: str
    entity: str
    id: str = Field(validation_alias=AliasChoices("entity_id", "id"))
    op: str
    data: dict[str, Any]
    at: UTCDatetimeOut = Field(validation_alias=AliasChoices("created_at", "at"))


class ChangeFeed(BaseModel):
    changes: list[ChangeOut]
    next_after: int


@router.get(
    "",
    response_model=ChangeFeed,
    summary="The catalog change feed, all tenants, in commit order (scope catalog:sync)",
)
async def get_changes(
    principal: CatalogSync,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Return changes with seq > after")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> ChangeFeed:
    # A tenant-bound sync token sees its own tenant's changes only.
    tenant = None if principal.tenant_id == ALL_TENANTS else principal.tenant_id
    rows = await read_changes(session, after=after, limit=limit, tenant_id=tenant)
    return ChangeFeed(
        changes=[ChangeOut.model_validate(r) for r in rows],
        next_after=rows[-1].seq if rows else after,
    )
