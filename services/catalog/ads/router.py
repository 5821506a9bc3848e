import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response, status

from services.catalog.ads.schemas import AdIn, AdOut, AdSpendIn, AdSpendOut
from services.catalog.core.crud import (
    EntitySpec,
    Reference,
    get_or_404,
    list_page,
    soft_delete,
    upsert,
)
from services.catalog.core.routes import ERRORS, IdPath, Reader, Writer, entity_router
from services.catalog.models import Ad, AdSpend, Campaign, Content, Product
from shared.app import SessionDep
from shared.pagination import Page, PageParams, page_params

ADS = EntitySpec(
    entity="ad",
    label="ad",
    model=Ad,
    out_schema=AdOut,
    references=(
        Reference("campaign_id", Campaign, "campaign"),
        Reference("content_id", Content, "content"),
        Reference("product_id", Product, "product"),
    ),
)
AD_SPEND = EntitySpec(
    entity="ad_spend",
    label="ad spend",
    model=AdSpend,
    out_schema=AdSpendOut,
    key_fields=("ad_id", "day"),
    references=(Reference("ad_id", Ad, "ad"),),
)

router = entity_router(ADS, plural="ads", body_schema=AdIn, tag="ads")
spend = APIRouter(prefix="/v1/ads/{ad_id}/spend", tags=["ads"], responses=ERRORS)

DayPath = Annotated[dt.date, Path(description="The day, YYYY-MM-DD, in the tenant's timezone")]


@spend.put(
    "/{day}",
    response_model=AdSpendOut,
    summary="Set an ad's spend for one day (create or replace)",
    responses={201: {"description": "Created", "model": AdSpendOut}},
)
async def put_ad_spend(
    ad_id: IdPath,
    day: DayPath,
    body: AdSpendIn,
    principal: Writer,
    session: SessionDep,
    response: Response,
) -> Any:
    # The ad is the path's parent: another tenant's (or no) ad is 404, like the list.
    await get_or_404(session, ADS, principal.tenant_id, {"id": ad_id})
    obj, outcome = await upsert(
        session, AD_SPEND, principal.tenant_id, {"ad_id": ad_id, "day": day}, body.model_dump()
    )
    await session.commit()
    response.status_code = 201 if outcome == "created" else 200
    return AdSpendOut.model_validate(obj)


@spend.get("", response_model=Page[AdSpendOut], summary="List an ad's daily spend")
async def list_ad_spend(
    ad_id: IdPath,
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Any:
    await get_or_404(session, ADS, principal.tenant_id, {"id": ad_id})
    rows, cursor = await list_page(
        session, AD_SPEND, principal.tenant_id, page, filters=[AdSpend.ad_id == ad_id]
    )
    return {"items": [AdSpendOut.model_validate(r) for r in rows], "next_cursor": cursor}


@spend.get("/{day}", response_model=AdSpendOut, summary="Read one day's spend")
async def get_ad_spend(ad_id: IdPath, day: DayPath, principal: Reader, session: SessionDep) -> Any:
    key = {"ad_id": ad_id, "day": day}
    return AdSpendOut.model_validate(await get_or_404(session, AD_SPEND, principal.tenant_id, key))


@spend.delete("/{day}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove one day's spend")
async def delete_ad_spend(
    ad_id: IdPath, day: DayPath, principal: Writer, session: SessionDep
) -> Response:
    await soft_delete(session, AD_SPEND, principal.tenant_id, {"ad_id": ad_id, "day": day})
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
