"""Shop connections (admin) and the shops' webhook receiver (signed by the shop, no token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from services.attribution.integrations import service
from services.attribution.integrations.schemas import (
    INTEGRATION_ID_PATTERN,
    DeliveryOut,
    IntegrationIn,
    IntegrationList,
    IntegrationOut,
    UnmatchedList,
    WebhookAnswer,
)
from shared.app import SessionDep
from shared.auth import Admin, ReportsReader
from shared.pagination import Page, PageDep

router = APIRouter(prefix="/v1/integrations", tags=["integrations"])

IntegrationId = Annotated[str, Path(pattern=INTEGRATION_ID_PATTERN)]


@router.get("", response_model=IntegrationList, summary="The tenant's connected shops")
async def list_integrations(principal: ReportsReader, session: SessionDep) -> IntegrationList:
    return IntegrationList(
        integrations=await service.list_integrations(session, principal.tenant_id)
    )


@router.put(
    "/{integration_id}",
    response_model=IntegrationOut,
    summary="Connect a Shopify or WooCommerce shop (201 created, 200 replaced)",
    description="The id is global (the webhook URL carries no tenant). The secret is stored "
    "encrypted and never shown; a changed secret keeps the old one valid for an hour.",
    responses={
        201: {"description": "Connected (a new integration)", "model": IntegrationOut},
        409: {"description": "The id belongs to another tenant"},
    },
)
async def put_integration(
    integration_id: IntegrationId,
    body: IntegrationIn,
    principal: Admin,
    session: SessionDep,
    request: Request,
    response: Response,
) -> IntegrationOut:
    created, out = await service.put_integration(
        session, principal.tenant_id, integration_id, body, request.app.state.settings.secret
    )
    await session.commit()
    response.status_code = 201 if created else 200
    return out


@router.get("/{integration_id}", response_model=IntegrationOut, summary="One connected shop")
async def get_integration(
    integration_id: IntegrationId, principal: ReportsReader, session: SessionDep
) -> IntegrationOut:
    return service.to_out(
        await service.get_integration(session, principal.tenant_id, integration_id)
    )


@router.post(
    "/{integration_id}/webhooks",
    response_model=WebhookAnswer,
    summary="Receive a shop webhook (Shopify or WooCommerce), signed with the shop's secret",
    description="Verified over the raw body before parsing; every signed delivery is kept and "
    "answered 200 (a failed mapping is listed under deliveries with its reason). WooCommerce's "
    "unsigned `webhook_id=N` ping answers 200 and stores nothing.",
    responses={
        401: {"description": "Missing or wrong signature; nothing stored"},
        404: {"description": "No such integration"},
    },
)
async def receive_webhook(
    integration_id: IntegrationId, session: SessionDep, request: Request
) -> WebhookAnswer:
    raw = await request.body()  # size-limited (413) by the body limit middleware
    headers = {k.lower(): v for k, v in request.headers.items()}
    received = await service.receive(
        session, integration_id, headers, raw, request.app.state.settings.secret
    )
    await session.commit()
    return received.answer


@router.get(
    "/{integration_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="The shop's webhook deliveries of the last 30 days, newest first, with outcomes",
)
async def list_deliveries(
    integration_id: IntegrationId,
    principal: Admin,
    session: SessionDep,
    page: PageDep,
) -> Page[DeliveryOut]:
    return await service.list_deliveries(session, principal.tenant_id, integration_id, page)


@router.get(
    "/{integration_id}/unmatched-products",
    response_model=UnmatchedList,
    summary="Shop products on this shop's orders that the catalog does not know",
)
async def unmatched_products(
    integration_id: IntegrationId, principal: ReportsReader, session: SessionDep
) -> UnmatchedList:
    return UnmatchedList(
        products=await service.unmatched_products(session, principal.tenant_id, integration_id)
    )
