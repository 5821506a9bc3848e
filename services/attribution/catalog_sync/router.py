from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from shared.auth import Admin

router = APIRouter(prefix="/v1/sync", tags=["catalog sync"])


class SyncResult(BaseModel):
    catalog_seq: int


@router.post(
    "",
    response_model=SyncResult,
    summary="Pull the catalog change feed now; answers once applied",
    description="A change the read model cannot take is skipped (kept in "
    "`catalog_sync_skipped`, logged and counted) rather than stop the feed.",
    responses={
        502: {"description": "The catalog answered with no usable change feed (problem+json)"},
        503: {"description": "Catalog unreachable (problem+json, Retry-After)"},
    },
)
async def post_sync(_: Admin, request: Request) -> SyncResult:
    return SyncResult(catalog_seq=await request.app.state.catalog_sync.pull())
