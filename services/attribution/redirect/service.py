"""Tracking-link redirects: find the link, record a ``click``, send the viewer on.

The click is stored through ``events.service.store_events``, the same single-statement insert
and late-data hook as ``POST /v1/events``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.events import service as events
from services.attribution.events.service import IngestOutcome
from services.attribution.events.validation import ID_RE, EventRow
from services.attribution.models import CatalogTrackingLink

COOKIE_NAME = "cf_uid"
COOKIE_MAX_AGE = 365 * 24 * 3600
CLICK_ID_PARAM = "cf_click_id"
CODE_RE = re.compile(r"[A-Za-z0-9._:-]{1,32}")


@dataclass(frozen=True, slots=True)
class LinkTarget:
    tenant_id: str
    content_id: str
    product_id: str | None
    ad_id: str | None
    destination_url: str


@dataclass(frozen=True, slots=True)
class RecordedClick:
    event_id: str
    click_id: str
    user_id: str
    location: str


def valid_id(value: str | None) -> bool:
    return value is not None and ID_RE.fullmatch(value) is not None


def choose_user_id(uid_param: str | None, cookie: str | None) -> tuple[str, bool]:
    """The viewer's id: a valid ``uid`` parameter, else a valid cookie, else a new one.

    Returns ``(user_id, minted)``; a minted id is to be set as the ``cf_uid`` cookie.
    """
    if uid_param is not None and valid_id(uid_param):
        return uid_param, False
    if cookie is not None and valid_id(cookie):
        return cookie, False
    return f"cfu_{uuid.uuid4().hex}", True


def with_click_id(url: str, click_id: str) -> str:
    """``url`` with ``cf_click_id`` set in its query; other parameters and the fragment are
    kept exactly as they were (a ``cf_click_id`` already there is replaced)."""
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]) != CLICK_ID_PARAM
    ]
    kept.append(f"{CLICK_ID_PARAM}={quote(click_id, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept)))


def redirectable(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


async def find_link(session: AsyncSession, code: str) -> LinkTarget | None:
    """The tracking link of ``code`` in the catalog read model (codes are unique globally)."""
    if CODE_RE.fullmatch(code) is None:
        return None
    row = (
        await session.execute(
            select(
                CatalogTrackingLink.tenant_id,
                CatalogTrackingLink.content_id,
                CatalogTrackingLink.product_id,
                CatalogTrackingLink.ad_id,
                CatalogTrackingLink.destination_url,
            ).where(CatalogTrackingLink.code == code)
        )
    ).first()
    if row is None:
        return None
    return LinkTarget(*row)


async def record_click(
    session: AsyncSession, link: LinkTarget, user_id: str, *, now: dt.datetime
) -> tuple[RecordedClick, IngestOutcome]:
    """Store the click (no commit) and say where to send the viewer."""
    token = uuid.uuid4().hex
    click = RecordedClick(
        event_id=f"rc_{token}",
        click_id=f"ck_{token}",
        user_id=user_id,
        location=with_click_id(link.destination_url, f"ck_{token}"),
    )
    row = EventRow(
        event_id=click.event_id,
        type="click",
        occurred_at=now,
        user_id=user_id,
        content_id=link.content_id,
        product_id=link.product_id,
        ad_id=link.ad_id,
        click_id=click.click_id,
        session_id=None,
        platform=None,
        properties=None,
    )
    stored = await events.store_events(session, link.tenant_id, [row], received_at=now)
    outcome = IngestOutcome(received=1)
    outcome.accepted_types = [r.type for r in stored]
    outcome.duplicate_types = [] if stored else ["click"]
    return click, outcome
