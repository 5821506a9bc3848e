"""How the dashboard's files are served (in-process; no browser needed)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.attribution.dashboard.router import STATIC_DIR
from tests.conftest import attribution_settings

ASSET = re.compile(r'(?:src|href)="(dashboard/static/[^"?]+)\?v=([0-9a-f]{16})"')


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    from services.attribution.app import create_app

    settings = attribution_settings(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", tmp_path)
    app = create_app(settings, configure_logs=False)  # the page needs no database: no lifespan
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://attribution.test") as c:
        yield c


def assert_revalidated(response: httpx.Response) -> None:
    """A 200 answer with an ETag that caches must check again before each use."""
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]


async def test_the_page_is_public_html_that_is_always_revalidated(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/dashboard")
    assert_revalidated(response)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>ClipFunnel dashboard</title>" in response.text
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_the_page_pins_every_asset_to_its_content_hash(client: httpx.AsyncClient) -> None:
    html = (await client.get("/dashboard")).text
    pinned = dict(ASSET.findall(html))
    assert set(pinned) == {
        "dashboard/static/app.js",
        "dashboard/static/style.css",
        "dashboard/static/favicon.svg",
        "dashboard/static/vendor/uplot/uPlot.iife.min.js",
        "dashboard/static/vendor/uplot/uPlot.min.css",
    }
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for path, version in pinned.items():
        response = await client.get(f"/{path}", params={"v": version})
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(types[Path(path).suffix])
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["etag"]
        assert response.headers["x-content-type-options"] == "nosniff"
        body = (STATIC_DIR / path.removeprefix("dashboard/static/")).read_bytes()
        assert response.content == body
        assert hashlib.sha256(body).hexdigest()[:16] == version


async def test_an_asset_without_its_version_is_revalidated_and_answers_304(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/dashboard/static/app.js")
    assert_revalidated(first)
    again = await client.get(
        "/dashboard/static/app.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    listed = await client.get(
        "/dashboard/static/app.js",
        headers={"If-None-Match": f'"other", W/{first.headers["etag"]}'},
    )
    assert listed.status_code == 304
    stale = await client.get("/dashboard/static/app.js", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/dashboard/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/nope.js",
        "/dashboard/static/%2e%2e/router.py",
        "/dashboard/static/..%2frouter.py",
        "/dashboard/static/",
        "/dashboard/static/index.html",
    ],
)
async def test_only_shipped_assets_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_trailing_slash_redirects_to_the_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/")
    assert response.status_code == 308
    assert response.headers["location"] == "../dashboard"


async def test_the_dashboard_is_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/dashboard")]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no absolute URL: every file the page uses ships in the package."""
    for path in STATIC_DIR.rglob("*"):
        if "vendor" in path.parts:
            continue  # third-party files, copied unchanged (see vendor/*/VERSION.txt)
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text()
            # The SVG namespace is an identifier, not something fetched.
            urls = set(re.findall(r"https?://[^\s'\"`)]+", text)) - {"http://www.w3.org/2000/svg"}
            assert not urls, f"{path.name} refers to {urls}"
            assert "innerHTML" not in text, f"{path.name}: API values go in as text only"


async def test_the_scripts_are_es_modules_that_import_only_local_files(
    client: httpx.AsyncClient,
) -> None:
    html = (await client.get("/dashboard")).text
    assert '<script type="module" src="dashboard/static/app.js?v=' in html
    for path in STATIC_DIR.glob("*.js"):
        for target in re.findall(r"from '([^']+)'", path.read_text()):
            assert target.startswith("./"), (path, target)
            assert (STATIC_DIR / target).is_file(), (path, target)
            response = await client.get(f"/dashboard/static/{target[2:]}")
            assert response.status_code == 200
            assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_the_vendored_chart_library_records_its_version_and_licence() -> None:
    vendor = STATIC_DIR / "vendor" / "uplot"
    note = (vendor / "VERSION.txt").read_text()
    assert "uPlot 1.6.32" in note
    digest = hashlib.sha256((vendor / "uPlot.iife.min.js").read_bytes()).hexdigest()
    assert digest in note
    assert "MIT License" in (vendor / "LICENSE.txt").read_text()
