"""The tenant's rules as a route dependency: ``rules: ReportRules``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.attribution.settings.service import Rules, load_rules
from shared.app import ReadSessionDep
from shared.auth import ReportsReader


async def report_rules(
    request: Request, principal: ReportsReader, session: ReadSessionDep
) -> Rules:
    """The rules a read needs: the webhook secret is left out (and so never decrypted)."""
    return await load_rules(
        session, principal.tenant_id, request.app.state.settings.secret, with_webhook_secret=False
    )


ReportRules = Annotated[Rules, Depends(report_rules)]
