"""Tracking links: short codes that the attribution service redirects through."""

from __future__ import annotations

import secrets
import string
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog.core.crud import EntitySpec, check_references, feed
from services.catalog.models import TrackingLink
from shared.db import utcnow

_ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 10  # 62^10 ≈ 8e17: collisions are negligible, and the unique index catches one


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def link_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/r/{code}"


async def create_link(
    session: AsyncSession,
    spec: EntitySpec,
    tenant_id: str,
    values: dict[str, Any],
    *,
    public_url: str,
) -> TrackingLink:
    await check_references(session, tenant_id, spec, values)
    now = utcnow()
    code = new_code()
    link = TrackingLink(
        tenant_id=tenant_id,
        id=code,
        url=link_url(public_url, code),
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(link)
    await feed(session, spec, tenant_id, link)
    return link
