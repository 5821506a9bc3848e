from fastapi import APIRouter, Request, Response, status

from services.catalog.core.crud import EntitySpec, get_or_404, list_page, references, soft_delete
from services.catalog.core.routes import ERRORS
from services.catalog.models import Ad, Content, Product, TrackingLink
from services.catalog.tracking_links.schemas import TrackingLinkIn, TrackingLinkOut
from services.catalog.tracking_links.service import create_link
from shared.app import IdPath, SessionDep
from shared.auth import CatalogReader, CatalogWriter
from shared.pagination import Page, PageDep

TRACKING_LINKS = EntitySpec(
    "tracking_link",
    TrackingLink,
    TrackingLinkOut,
    references=references(content_id=Content, product_id=Product, ad_id=Ad),
)

router = APIRouter(prefix="/v1/tracking-links", tags=["tracking links"], responses=ERRORS)


@router.post(
    "",
    response_model=TrackingLinkOut,
    status_code=status.HTTP_201_CREATED,
    summary="Mint a tracking link (a short code redirected by the attribution service)",
)
async def post_tracking_link(
    body: TrackingLinkIn, principal: CatalogWriter, session: SessionDep, request: Request
) -> TrackingLinkOut:
    link = await create_link(
        session,
        TRACKING_LINKS,
        principal.tenant_id,
        body.model_dump(mode="json"),
        public_url=request.app.state.settings.public_url,
    )
    await session.commit()
    return TrackingLinkOut.model_validate(link)


@router.get("", response_model=Page[TrackingLinkOut], summary="List tracking links")
async def list_tracking_links(
    principal: CatalogReader, session: SessionDep, page: PageDep
) -> Page[TrackingLinkOut]:
    rows, cursor = await list_page(session, TRACKING_LINKS, principal.tenant_id, page)
    items = [TrackingLinkOut.model_validate(r) for r in rows]
    return Page[TrackingLinkOut](items=items, next_cursor=cursor)


@router.get("/{code}", response_model=TrackingLinkOut, summary="Read a tracking link")
async def get_tracking_link(
    code: IdPath, principal: CatalogReader, session: SessionDep
) -> TrackingLinkOut:
    link = await get_or_404(session, TRACKING_LINKS, principal.tenant_id, {"id": code})
    return TrackingLinkOut.model_validate(link)


@router.delete("/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Retire a tracking link")
async def delete_tracking_link(
    code: IdPath, principal: CatalogWriter, session: SessionDep
) -> Response:
    await soft_delete(session, TRACKING_LINKS, principal.tenant_id, {"id": code})
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
