from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status

from services.catalog.contents.schemas import (
    ContentIn,
    ContentOut,
    ContentProductIn,
    ContentProductOut,
)
from services.catalog.core.crud import (
    EntitySpec,
    Reference,
    get_or_404,
    list_page,
    soft_delete,
    upsert,
)
from services.catalog.core.routes import ERRORS, IdPath, Reader, Writer, entity_router
from services.catalog.models import Account, Content, ContentProduct, Product
from shared.app import SessionDep
from shared.pagination import Page, PageParams, page_params

CONTENTS = EntitySpec(
    entity="content",
    label="content",
    model=Content,
    out_schema=ContentOut,
    references=(Reference("account_id", Account, "account"),),
)
CONTENT_PRODUCTS = EntitySpec(
    entity="content_product",
    label="content–product link",
    model=ContentProduct,
    out_schema=ContentProductOut,
    key_fields=("content_id", "product_id"),
    references=(
        Reference("content_id", Content, "content"),
        Reference("product_id", Product, "product"),
    ),
)

router = entity_router(CONTENTS, plural="contents", body_schema=ContentIn, tag="contents")
links = APIRouter(prefix="/v1/contents/{content_id}/products", tags=["contents"], responses=ERRORS)


@links.put(
    "/{product_id}",
    response_model=ContentProductOut,
    summary="Link a product to a content (create or replace)",
    responses={201: {"description": "Created", "model": ContentProductOut}},
)
async def put_content_product(
    content_id: IdPath,
    product_id: IdPath,
    body: ContentProductIn,
    principal: Writer,
    session: SessionDep,
    response: Response,
) -> Any:
    # The content is the path's parent: another tenant's (or no) content is 404, like the list.
    await get_or_404(session, CONTENTS, principal.tenant_id, {"id": content_id})
    key = {"content_id": content_id, "product_id": product_id}
    obj, outcome = await upsert(
        session, CONTENT_PRODUCTS, principal.tenant_id, key, body.model_dump()
    )
    await session.commit()
    response.status_code = 201 if outcome == "created" else 200
    return ContentProductOut.model_validate(obj)


@links.get("", response_model=Page[ContentProductOut], summary="List a content's products")
async def list_content_products(
    content_id: IdPath,
    principal: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Any:
    await get_or_404(session, CONTENTS, principal.tenant_id, {"id": content_id})
    rows, cursor = await list_page(
        session,
        CONTENT_PRODUCTS,
        principal.tenant_id,
        page,
        filters=[ContentProduct.content_id == content_id],
    )
    return {"items": [ContentProductOut.model_validate(r) for r in rows], "next_cursor": cursor}


@links.get("/{product_id}", response_model=ContentProductOut, summary="Read one link")
async def get_content_product(
    content_id: IdPath, product_id: IdPath, principal: Reader, session: SessionDep
) -> Any:
    key = {"content_id": content_id, "product_id": product_id}
    return ContentProductOut.model_validate(
        await get_or_404(session, CONTENT_PRODUCTS, principal.tenant_id, key)
    )


@links.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unlink")
async def delete_content_product(
    content_id: IdPath, product_id: IdPath, principal: Writer, session: SessionDep
) -> Response:
    key = {"content_id": content_id, "product_id": product_id}
    await soft_delete(session, CONTENT_PRODUCTS, principal.tenant_id, key)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
