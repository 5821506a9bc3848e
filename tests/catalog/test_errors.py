"""Every error the catalog answers is RFC 9457 problem+json with type, title, status, detail."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from shared.errors import Conflict, install_error_handlers
from tests.catalog.factories import Shop, account_body, problem_issues
from tests.conftest import TokenFactory, auth


async def test_every_error_status_is_a_problem_json(
    shop: Shop, catalog: httpx.AsyncClient, make_token: TokenFactory
) -> None:
    reader = auth(make_token(shop.tenant_id, "catalog:read"))
    cases: list[tuple[int, httpx.Response]] = [
        (401, await catalog.get("/v1/accounts")),
        (401, await catalog.get("/v1/accounts", headers=auth("not-a-token"))),
        (403, await catalog.put("/v1/accounts/a1", json=account_body(), headers=reader)),
        (404, await shop.request("GET", "/v1/accounts/never-created")),
        (404, await shop.request("GET", "/v1/no-such-collection")),
        (405, await shop.request("POST", "/v1/accounts/a1", json=account_body())),
        (405, await shop.request("PATCH", "/v1/products/p1", json={})),
        (422, await shop.request("PUT", "/v1/accounts/a1", json={"platform": "myspace"})),
        (422, await shop.request("GET", "/v1/accounts", params={"limit": 0})),
    ]
    failures = []
    for status, response in cases:
        issues = problem_issues(response, status)
        body = response.json() if not issues else {}
        if body and not (body["title"] and body["detail"] and body["type"].startswith("http")):
            issues.append(f"empty title/detail or bad type: {body}")
        if issues:
            failures.append(f"{response.request.method} {response.request.url.path}: {issues}")
    assert failures == []


async def test_a_conflict_is_a_problem_json_too() -> None:
    """No catalog route answers 409 today; the shared handlers turn one into a problem."""
    app = FastAPI()
    install_error_handlers(app)

    @app.put("/raised")
    async def raised() -> None:
        raise Conflict("The same status was posted with a different body.")

    @app.put("/http")
    async def http() -> None:
        raise HTTPException(409, "busy")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/raised", "/http"):
            assert problem_issues(await client.put(path), 409) == []
