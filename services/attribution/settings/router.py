from __future__ import annotations

from fastapi import APIRouter, Request

from services.attribution.settings.schemas import SettingsOut, SettingsUpdate
from services.attribution.settings.service import load_rules, to_out, update_settings
from shared.app import SessionDep
from shared.auth import Admin, ReportsReader

router = APIRouter(prefix="/v1/settings", tags=["settings"])


@router.get("", response_model=SettingsOut, summary="The tenant's attribution settings")
async def get_settings(
    principal: ReportsReader,
    session: SessionDep,
    request: Request,
) -> SettingsOut:
    rules = await load_rules(session, principal.tenant_id, request.app.state.settings.secret)
    return to_out(rules)


@router.put(
    "",
    response_model=SettingsOut,
    summary="Change the tenant's settings (fields left out stay as they are)",
    responses={409: {"description": "Currency change would mix currencies"}},
)
async def put_settings(
    body: SettingsUpdate,
    principal: Admin,
    session: SessionDep,
    request: Request,
) -> SettingsOut:
    rules = await update_settings(
        session, principal.tenant_id, body, request.app.state.settings.secret
    )
    await session.commit()
    return to_out(rules)
