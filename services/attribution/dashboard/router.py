"""``GET /dashboard``: the marketer's single-page dashboard, served from files in the package.

The page holds no data: it is public, and its scripts call the API with the bearer token the
user pastes (kept in the tab's session storage). The files under ``static/`` are served by
Starlette's ``StaticFiles`` (path checks, ETag/Last-Modified, 304s, HEAD), wrapped in
:class:`SecurityHeaders`, which adds the security headers and the caching rule: a request
carrying ``?v=<content hash>`` that matches the file may be cached for a year, anything else
is revalidated. The page references its assets with that hash, so a release is picked up at
once. ``index.html`` is only served as ``/dashboard``, with the hashes filled in.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).parent / "static"
# The page loads only its own files and calls only its own origin; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_ASSET_REF = re.compile(r'(dashboard/static/)([A-Za-z0-9._/-]+)"')


@cache
def versions() -> dict[str, str]:
    """Content hash of every file under ``static/``, by its POSIX path relative to it."""
    return {
        path.relative_to(STATIC_DIR).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted(STATIC_DIR.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@cache
def page() -> tuple[bytes, str]:
    """``index.html`` with each asset reference pinned to its content hash, and its ETag."""
    known = versions()

    def pin(match: re.Match[str]) -> str:
        version = known.get(match.group(2))
        suffix = f"?v={version}" if version else ""
        return f'{match.group(1)}{match.group(2)}{suffix}"'

    html = _ASSET_REF.sub(pin, (STATIC_DIR / "index.html").read_text("utf-8"))
    body = html.encode("utf-8")
    return body, hashlib.sha256(body).hexdigest()[:16]


class DashboardFiles(StaticFiles):
    """``StaticFiles`` over ``static/`` that never serves the page template itself."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if Path(path).as_posix().lstrip("/") == "index.html":
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


class SecurityHeaders:
    """ASGI middleware: security headers on every answer, plus the dashboard's caching rule."""

    def __init__(self, app: ASGIApp, headers: dict[str, str] | None = None) -> None:
        self.app = app
        self.headers = [
            (k.lower().encode(), v.encode()) for k, v in (headers or SECURITY_HEADERS).items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", "")).rsplit("/dashboard/static/", 1)[-1]
        query = scope.get("query_string", b"").decode("latin-1")
        wanted = dict(part.partition("=")[::2] for part in query.split("&") if part).get("v")
        pinned = wanted is not None and versions().get(path) == wanted
        cache_control = (IMMUTABLE if pinned else REVALIDATE).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                message["headers"] = [*headers, *self.headers, (b"cache-control", cache_control)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an ``If-None-Match`` list against our ETag."""
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


router = APIRouter(tags=["dashboard"], include_in_schema=False)
router.mount(
    "/dashboard/static",
    SecurityHeaders(DashboardFiles(directory=STATIC_DIR)),
    name="dashboard-static",
)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def dashboard(request: Request) -> Response:
    body, etag = page()
    headers = {"ETag": f'"{etag}"', "Cache-Control": REVALIDATE, **SECURITY_HEADERS}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


@router.api_route("/dashboard/", methods=["GET", "HEAD"])
async def dashboard_slash() -> Response:
    # Relative, so it stays right behind a proxy that mounts the service under a prefix.
    return RedirectResponse("../dashboard", status_code=308)
