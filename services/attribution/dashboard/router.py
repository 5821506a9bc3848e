"""``GET /dashboard``: the marketer's single-page dashboard, served from files in the package.

The page holds no data: it is public, and its script calls the API with the bearer token the
user pastes (kept in the tab's session storage). Assets are read once per process, served
with an ETag, and referenced from the page with ``?v=<etag>`` so they can be cached for a
year while a new release is picked up at once; the page itself is revalidated every time.
Only files that exist under ``static/`` at start-up can be served (no path is ever joined
from the request), with a content type from a fixed table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from shared.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The page loads only its own files and calls only its own origin; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_ASSET_REF = re.compile(r'(dashboard/static/)([A-Za-z0-9._/-]+)"')


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:16]
        return cls(body=body, content_type=CONTENT_TYPES[suffix], etag=digest)


@cache
def assets() -> dict[str, Asset]:
    """Every servable file under ``static/`` by its POSIX path relative to it."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and path.suffix in CONTENT_TYPES and not path.name.startswith("."):
            found[path.relative_to(STATIC_DIR).as_posix()] = Asset.of(
                path.read_bytes(), path.suffix
            )
    return found


@cache
def page() -> Asset:
    """``index.html`` with each asset reference pinned to its content hash."""
    files = assets()

    def pin(match: re.Match[str]) -> str:
        asset = files.get(match.group(2))
        version = f"?v={asset.etag}" if asset else ""
        return f'{match.group(1)}{match.group(2)}{version}"'

    html = _ASSET_REF.sub(pin, files["index.html"].body.decode("utf-8"))
    return Asset.of(html.encode("utf-8"), ".html")


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an ``If-None-Match`` list against our ETag."""
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _answer(request: Request, asset: Asset, cache_control: str, **extra: str) -> Response:
    headers = {"ETag": f'"{asset.etag}"', "Cache-Control": cache_control, **extra}
    if _matches(request.headers.get("if-none-match", ""), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
async def dashboard(request: Request) -> Response:
    return _answer(
        request, page(), REVALIDATE, **SECURITY_HEADERS, **{"Content-Security-Policy": CSP}
    )


@router.api_route("/dashboard/", methods=["GET", "HEAD"])
async def dashboard_slash() -> Response:
    # Relative, so it stays right behind a proxy that mounts the service under a prefix.
    return RedirectResponse("../dashboard", status_code=308)


@router.api_route("/dashboard/static/{asset_path:path}", methods=["GET", "HEAD"])
async def dashboard_asset(asset_path: str, request: Request) -> Response:
    asset = assets().get(asset_path)
    if asset is None or asset_path == "index.html":
        raise NotFound(f"No dashboard asset named {asset_path!r}.")
    pinned = request.query_params.get("v") == asset.etag
    return _answer(request, asset, IMMUTABLE if pinned else REVALIDATE, **SECURITY_HEADERS)
