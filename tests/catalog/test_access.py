"""Who may call what: table-driven over every catalog route.

Missing or bad credentials are 401 (with `WWW-Authenticate: Bearer`), a valid token without the
route's scope is 403, and another tenant's objects are 404 — never readable, changeable or
deletable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from services.catalog.app import create_app
from services.catalog.models import RevokedToken
from services.catalog.settings import CatalogSettings
from shared.auth import mint_token
from shared.revocation import revoke_token_id
from tests.catalog import factories
from tests.catalog.factories import (
    Json,
    Shop,
    World,
    problem_issues,
    read_feed,
    unseen_world,
)
from tests.conftest import TEST_SECRET, TokenFactory, auth


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the route as the app declares it
    path: str  # the route applied to tenant A's objects
    scope: str
    body: Json | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def catalog_routes(w: World) -> list[Route]:
    """Every catalog route, applied to the objects of tenant A's world."""
    account, product, video, live = w.account["id"], w.product["id"], w.video["id"], w.live["id"]
    campaign, ad, day, code = w.campaign["id"], w.ad["id"], w.spend["day"], w.tracking_link["code"]
    routes: list[Route] = []
    items: list[tuple[str, str, str, Json]] = [
        ("accounts", "account_id", account, factories.account_body()),
        ("products", "product_id", product, factories.product_body()),
        ("contents", "content_id", live, factories.live_body(w.account["id"])),
        ("campaigns", "campaign_id", campaign, factories.campaign_body()),
        ("ads", "ad_id", ad, factories.ad_body(campaign, video, product_id=product)),
    ]
    for plural, name, object_id, body in items:
        item = f"/v1/{plural}/{{{name}}}"
        routes += [
            Route("GET", f"/v1/{plural}", f"/v1/{plural}", "catalog:read"),
            Route("GET", item, f"/v1/{plural}/{object_id}", "catalog:read"),
            Route("PUT", item, f"/v1/{plural}/{object_id}", "catalog:write", body),
            Route("DELETE", item, f"/v1/{plural}/{object_id}", "catalog:write"),
        ]
    links = "/v1/contents/{content_id}/products"
    link = f"/v1/contents/{live}/products/{product}"
    spends = "/v1/ads/{ad_id}/spend"
    spend = f"/v1/ads/{ad}/spend/{day}"
    links_path = f"/v1/contents/{live}/products"
    spends_path = f"/v1/ads/{ad}/spend"
    code_path = f"/v1/tracking-links/{code}"
    tl_body = factories.tracking_link_body(video, product_id=product, ad_id=ad)
    routes += [
        Route("GET", links, links_path, "catalog:read"),
        Route("GET", links + "/{product_id}", link, "catalog:read"),
        Route("PUT", links + "/{product_id}", link, "catalog:write", factories.link_body()),
        Route("DELETE", links + "/{product_id}", link, "catalog:write"),
        Route("GET", spends, spends_path, "catalog:read"),
        Route("GET", spends + "/{day}", spend, "catalog:read"),
        Route("PUT", spends + "/{day}", spend, "catalog:write", factories.spend_body()),
        Route("DELETE", spends + "/{day}", spend, "catalog:write"),
        Route("POST", "/v1/tracking-links", "/v1/tracking-links", "catalog:write", tl_body),
        Route("GET", "/v1/tracking-links", "/v1/tracking-links", "catalog:read"),
        Route("GET", "/v1/tracking-links/{code}", code_path, "catalog:read"),
        Route("DELETE", "/v1/tracking-links/{code}", code_path, "catalog:write"),
        Route("GET", "/v1/changes", "/v1/changes", "catalog:sync"),
    ]
    return routes


async def call(client: httpx.AsyncClient, route: Route, headers: dict[str, str]) -> httpx.Response:
    kwargs: dict[str, Any] = {} if route.body is None else {"json": route.body}
    return await client.request(route.method, route.path, headers=headers, **kwargs)


async def refusals(
    client: httpx.AsyncClient, routes: list[Route], headers: dict[str, str], status: int
) -> list[str]:
    failures: list[str] = []
    for route in routes:
        response = await call(client, route, headers)
        issues = problem_issues(response, status)
        if status == 401 and not response.headers.get("www-authenticate", "").startswith("Bearer"):
            issues.append(f"WWW-Authenticate is {response.headers.get('www-authenticate')!r}")
        if issues:
            failures.append(f"{route}: {issues}")
    return failures


async def snapshot(shop: Shop, w: World) -> list[Json]:
    """Everything tenant A can read about its world."""
    reads = [r for r in catalog_routes(w) if r.method == "GET" and r.scope == "catalog:read"]
    return [await shop.get(r.path) for r in reads]


def test_the_route_table_covers_every_catalog_route(tmp_path: Path) -> None:
    # Declared routes only: no database needed, so this runs once, not per backend.
    settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        secret=TEST_SECRET,
        var_dir=tmp_path,
        environment="test",
    )
    app = create_app(settings, configure_logs=False)
    declared = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    }
    assert {(r.method, r.template) for r in catalog_routes(unseen_world())} == declared


async def test_no_token_is_401_with_www_authenticate_on_every_route(
    catalog: httpx.AsyncClient,
) -> None:
    routes = catalog_routes(unseen_world())
    assert await refusals(catalog, routes, {}, 401) == []
    assert await refusals(catalog, routes, {"Authorization": "Basic dXNlcjpwYXNz"}, 401) == []


async def test_garbage_tokens_are_401_on_every_route(
    shop: Shop, catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str
) -> None:
    routes = catalog_routes(unseen_world())
    prefix, payload, signature = make_token(tenant, "admin").split(".")
    other_payload = make_token("*", "catalog:sync").split(".")[1]
    garbage = [
        "garbage",
        "cf1.e30.AAAA",
        f"{prefix}.{payload}",
        f"{prefix}.{payload}.{signature[:-4]}",
        f"{prefix}.{other_payload}.{signature}",  # a payload swapped under A's signature
        f"{prefix}.{payload}.{signature}.extra",
    ]
    failures = []
    for token in garbage:
        failures += await refusals(catalog, routes, auth(token), 401)
    assert failures == []


async def test_a_token_signed_with_another_secret_is_401_on_every_route(
    shop: Shop, catalog: httpx.AsyncClient
) -> None:
    routes = catalog_routes(unseen_world())
    forged = mint_token("another-secret-0123456789abcdef", shop.tenant_id, ["admin"])
    forged_sync = mint_token("another-secret-0123456789abcdef", "*", ["catalog:sync"])
    assert await refusals(catalog, routes, auth(forged), 401) == []
    assert await refusals(catalog, routes[-1:], auth(forged_sync), 401) == []


async def test_an_expired_token_is_401_on_every_route(
    shop: Shop, catalog: httpx.AsyncClient
) -> None:
    routes = catalog_routes(unseen_world())
    long_ago = 1_600_000_000  # 2020-09-13
    expired = mint_token(TEST_SECRET, shop.tenant_id, ["admin"], ttl_seconds=60, now=long_ago)
    expired_sync = mint_token(TEST_SECRET, "*", ["catalog:sync"], ttl_seconds=60, now=long_ago)
    assert await refusals(catalog, routes, auth(expired), 401) == []
    assert await refusals(catalog, routes[-1:], auth(expired_sync), 401) == []
    # The same token with an hour still to run is accepted.
    fresh = mint_token(TEST_SECRET, shop.tenant_id, ["catalog:read"], ttl_seconds=3600)
    assert (await catalog.get("/v1/accounts", headers=auth(fresh))).status_code == 200


async def test_a_revoked_token_is_401(
    shop: Shop, catalog: httpx.AsyncClient, catalog_app: FastAPI
) -> None:
    token = mint_token(TEST_SECRET, shop.tenant_id, ["catalog:read"], token_id="revoke-me")
    assert (await catalog.get("/v1/accounts", headers=auth(token))).status_code == 200

    database_url = catalog_app.state.settings.database_url
    await revoke_token_id(database_url, RevokedToken, shop.tenant_id, "revoke-me")
    catalog_app.state.token_verifier.forget_cache()

    response = await catalog.get("/v1/accounts", headers=auth(token))
    assert problem_issues(response, 401) == []
    assert (await shop.request("GET", "/v1/accounts")).status_code == 200


async def test_a_token_without_the_routes_scope_is_403_on_every_route(
    shop: Shop, catalog: httpx.AsyncClient, make_token: TokenFactory
) -> None:
    w = await shop.world()
    before = await snapshot(shop, w)
    routes = catalog_routes(w)
    tenant = shop.tenant_id
    scope_sets = [
        ("catalog:read",),
        ("catalog:write",),
        ("events:write", "orders:write", "reports:read"),
        ("catalog:sync",),  # bound to one tenant: its own feed only
    ]
    failures = []
    for scopes in scope_sets:
        lacking = [r for r in routes if r.scope not in scopes]
        token = make_token(tenant, *scopes)
        failures += [f"{scopes} {f}" for f in await refusals(catalog, lacking, auth(token), 403)]
    # admin is every tenant scope but never the cross-tenant feed.
    admin = make_token(tenant, "admin")
    failures += await refusals(catalog, routes[-1:], auth(admin), 403)
    # The cross-tenant sync token cannot act on any one tenant's data, even as admin.
    for token in (make_token("*", "catalog:sync"), make_token("*", "admin", "catalog:sync")):
        failures += await refusals(catalog, routes[:-1], auth(token), 403)
    assert failures == []
    assert await snapshot(shop, w) == before


async def test_another_tenants_objects_are_404_and_stay_unchanged(
    shop: Shop, other_shop: Shop, sync_token: str
) -> None:
    w = await shop.world()
    before = await snapshot(shop, w)
    feed_before = await read_feed(shop.client, sync_token)
    await other_shop.world()  # B has objects of its own

    routes = catalog_routes(w)
    # Reads and deletes of A's objects, and writes under them, are 404 to B.
    targets = [
        r for r in routes if r.template.count("{") == 2 or ("{" in r.template and r.method != "PUT")
    ]
    failures = await refusals(other_shop.client, targets, other_shop.headers, 404)
    assert failures == []
    assert {str(r) for r in targets} >= {
        f"PUT /v1/contents/{w.live['id']}/products/{w.product['id']}",
        f"PUT /v1/ads/{w.ad['id']}/spend/{w.spend['day']}",
        f"DELETE /v1/tracking-links/{w.tracking_link['code']}",
    }

    # A PUT of the same id creates B's own object; A's is untouched.
    mine = await other_shop.put(
        f"/v1/accounts/{w.account['id']}", factories.account_body(handle="@b"), expect=(201,)
    )
    assert mine["handle"] == "@b"
    # B's lists never show A's objects.
    for plural in ("accounts", "products", "contents", "campaigns", "ads", "tracking-links"):
        listed = await other_shop.list_all(f"/v1/{plural}")
        assert not [i for i in listed if i in before], plural

    assert await snapshot(shop, w) == before
    changes = await read_feed(shop.client, sync_token, after=feed_before[-1]["seq"])
    assert [c for c in changes if c["tenant_id"] == shop.tenant_id] == []
