"""``GET /r/{code}``: the public tracking-link redirect (no credentials)."""

from __future__ import annotations

import html
import logging
from typing import Annotated

from fastapi import APIRouter, Cookie, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from services.attribution.events.service import record_metrics
from services.attribution.redirect.service import (
    COOKIE_MAX_AGE,
    COOKIE_NAME,
    choose_user_id,
    find_link,
    record_click,
    redirectable,
)
from shared.app import SessionDep
from shared.db import utcnow

log = logging.getLogger("clipfunnel.redirect")
router = APIRouter(tags=["tracking links"])

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 32rem">
<h1>Link not found</h1>
<p>The link <code>{code}</code> does not exist or has been retired.</p>
</body></html>
"""


def not_found_page(code: str) -> HTMLResponse:
    return HTMLResponse(
        _NOT_FOUND_PAGE.format(code=html.escape(code[:64])),
        status_code=404,
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/r/{code}",
    status_code=302,
    response_class=RedirectResponse,
    summary="Follow a tracking link: record a click and redirect to the destination",
    description=(
        "Records a `click` event for the link's content, product and ad, with a new `click_id`, "
        "and answers 302 to the destination with `cf_click_id=<click_id>` added to its query. "
        "The viewer is the `uid` query parameter when it is a valid id, else the `cf_uid` "
        "cookie, else a new id, which is then set as the `cf_uid` cookie (one year). Should "
        "the click fail to be stored, the viewer is still sent to the destination (without "
        "`cf_click_id`) and the failure is logged."
    ),
    responses={
        302: {
            "description": "Redirect to the destination, with `cf_click_id` in the query",
            "headers": {
                "Location": {"schema": {"type": "string"}, "description": "The destination"},
                "Set-Cookie": {
                    "schema": {"type": "string"},
                    "description": "`cf_uid`, when the viewer had none",
                },
            },
        },
        404: {
            "description": "No such link (a small HTML page)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
async def follow_link(
    code: str,
    request: Request,
    session: SessionDep,
    uid: Annotated[
        str | None, Query(description="The viewer's id as the sharing app knows it")
    ] = None,
    cf_uid: Annotated[
        str | None, Cookie(description="The viewer id this browser was given before")
    ] = None,
) -> Response:
    link = await find_link(session, code)
    if link is None or not redirectable(link.destination_url):
        return not_found_page(code)
    user_id, minted = choose_user_id(uid, cf_uid)
    try:
        click, outcome = await record_click(session, link, user_id, now=utcnow())
        await session.commit()
    except SQLAlchemyError as exc:
        # The viewer still gets to the shop; the click is lost, and said so in the log.
        await session.rollback()
        log.error("tracking link %s: click not recorded (%s)", code, type(exc).__name__)
        location = link.destination_url
    else:
        record_metrics(outcome)
        location = click.location
    response = RedirectResponse(location, status_code=302)
    response.headers["Cache-Control"] = "no-store"
    if minted:
        response.set_cookie(
            COOKIE_NAME,
            user_id,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
