"""``GET /r/{code}``: the tracking-link redirect records a click and sends the viewer on."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from services.attribution.events import service as events_service
from services.attribution.redirect.service import choose_user_id, with_click_id
from tests.attribution.conftest import LateCalls
from tests.attribution.factories import (
    batch,
    event,
    events_counter,
    make_tracking_link,
    stored_events,
    sync_catalog,
)
from tests.conftest import auth

DESTINATION = "https://shop.example/p/1?utm_source=douyin&q=a%20b&flag#reviews"


# --- pure helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example/p/1", "https://shop.example/p/1?cf_click_id=ck_1"),
        (
            "https://shop.example/p?a=1&b=x%20y",
            "https://shop.example/p?a=1&b=x%20y&cf_click_id=ck_1",
        ),
        ("https://shop.example/p?a=1#frag", "https://shop.example/p?a=1&cf_click_id=ck_1#frag"),
        ("https://shop.example/p?flag&a=", "https://shop.example/p?flag&a=&cf_click_id=ck_1"),
        (
            "https://shop.example/p?cf_click_id=old&a=1",
            "https://shop.example/p?a=1&cf_click_id=ck_1",
        ),
        (
            "https://shop.example/#/spa/route?x=1",
            "https://shop.example/?cf_click_id=ck_1#/spa/route?x=1",
        ),
    ],
)
def test_the_click_id_is_added_to_the_query(url: str, expected: str) -> None:
    assert with_click_id(url, "ck_1") == expected


def test_the_user_id_comes_from_uid_then_cookie_then_a_new_one() -> None:
    assert choose_user_id("u1", "c1") == ("u1", False)
    assert choose_user_id(None, "c1") == ("c1", False)
    assert choose_user_id("not valid!", "c1") == ("c1", False)
    user_id, minted = choose_user_id(None, "bad cookie")
    assert minted
    assert user_id.startswith("cfu_")
    assert choose_user_id(None, None)[0] != user_id


# --- over HTTP, on both databases ------------------------------------------------------------


@pytest.fixture
async def code(
    catalog: httpx.AsyncClient, attribution: httpx.AsyncClient, make_token: Any, tenant: str
) -> str:
    link_code = await make_tracking_link(catalog, make_token(tenant), destination_url=DESTINATION)
    await sync_catalog(attribution, make_token(tenant, "admin"))
    attribution.cookies.clear()
    return link_code


def clicks_of(events: dict[str, Any]) -> list[Any]:
    return [e for e in events.values() if e.type == "click"]


async def test_a_first_visit_records_a_click_sets_the_cookie_and_redirects(
    attribution: httpx.AsyncClient, attribution_app: FastAPI, tenant: str, code: str
) -> None:
    before = events_counter("click", "accepted")
    response = await attribution.get(f"/r/{code}")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"

    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example", "/p/1")
    assert location.fragment == "reviews"
    assert location.query.startswith("utm_source=douyin&q=a%20b&flag&cf_click_id=")
    click_id = parse_qs(location.query)["cf_click_id"][0]

    cookie = response.headers["set-cookie"]
    user_id = response.cookies["cf_uid"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Max-Age=31536000" in cookie

    clicks = clicks_of(await stored_events(attribution_app, tenant))
    assert len(clicks) == 1
    click = clicks[0]
    assert click.click_id == click_id
    assert click.user_id == user_id
    assert (click.content_id, click.product_id, click.ad_id) == ("vid-1", "prod-1", "ad-1")
    assert click.platform is None
    assert click.occurred_at.tzinfo is not None
    assert events_counter("click", "accepted") - before == 1


async def test_an_existing_cookie_is_reused(
    attribution: httpx.AsyncClient, attribution_app: FastAPI, tenant: str, code: str
) -> None:
    response = await attribution.get(f"/r/{code}", headers={"Cookie": "cf_uid=viewer-7"})
    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    again = await attribution.get(f"/r/{code}", headers={"Cookie": "cf_uid=viewer-7"})
    clicks = clicks_of(await stored_events(attribution_app, tenant))
    assert [c.user_id for c in clicks] == ["viewer-7", "viewer-7"]
    assert len({c.click_id for c in clicks}) == 2
    assert response.headers["location"] != again.headers["location"]


async def test_the_uid_parameter_wins_over_the_cookie(
    attribution: httpx.AsyncClient, attribution_app: FastAPI, tenant: str, code: str
) -> None:
    response = await attribution.get(
        f"/r/{code}", params={"uid": "app-user-1"}, headers={"Cookie": "cf_uid=viewer-7"}
    )
    assert response.status_code == 302
    assert "set-cookie" not in response.headers
    response = await attribution.get(f"/r/{code}", params={"uid": "bad uid!"})
    assert "cf_uid=" in response.headers["set-cookie"]
    clicks = clicks_of(await stored_events(attribution_app, tenant))
    assert sorted(c.user_id for c in clicks)[0] == "app-user-1"
    assert response.cookies["cf_uid"] in {c.user_id for c in clicks}


async def test_an_unknown_code_is_an_html_404_and_records_nothing(
    attribution: httpx.AsyncClient, attribution_app: FastAPI, tenant: str, code: str
) -> None:
    for unknown in ("nosuchcode", "a" * 40, "<script>"):
        response = await attribution.get(f"/r/{unknown}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "<script>" not in response.text
        assert "set-cookie" not in response.headers
    assert await stored_events(attribution_app, tenant) == {}


async def test_the_click_goes_through_the_late_data_hook(
    attribution: httpx.AsyncClient, code: str, tenant: str, late_data_calls: LateCalls
) -> None:
    calls = late_data_calls
    response = await attribution.get(f"/r/{code}", params={"uid": "u-9"})
    click_id = parse_qs(urlsplit(response.headers["location"]).query)["cf_click_id"][0]
    assert len(calls) == 1
    tenant_id, touches = calls[0]
    assert tenant_id == tenant
    assert [(t.type, t.user_id, t.click_id) for t in touches] == [("click", "u-9", click_id)]


async def test_later_events_inherit_the_links_content_through_the_click_id(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    make_token: Any,
    tenant: str,
    code: str,
) -> None:
    response = await attribution.get(f"/r/{code}", params={"uid": "u-9"})
    click_id = parse_qs(urlsplit(response.headers["location"]).query)["cf_click_id"][0]
    cart = event(event_id="cart-1", type="add_to_cart", content_id=None, click_id=click_id)
    answer = await attribution.post(
        "/v1/events", json=batch(cart), headers=auth(make_token(tenant, "events:write"))
    )
    assert answer.json()["accepted"] == 1
    stored = (await stored_events(attribution_app, tenant))["cart-1"]
    assert (stored.content_id, stored.product_id, stored.ad_id) == ("vid-1", "prod-1", "ad-1")


async def test_a_link_without_product_or_ad(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    make_token: Any,
    tenant: str,
) -> None:
    link_code = await make_tracking_link(
        catalog,
        make_token(tenant),
        content_id="vid-2",
        product_id=None,
        ad_id=None,
        destination_url="http://shop.example",
    )
    await sync_catalog(attribution, make_token(tenant, "admin"))
    response = await attribution.get(f"/r/{link_code}", params={"uid": "u-1"})
    assert response.status_code == 302
    assert response.headers["location"].startswith("http://shop.example/?cf_click_id=ck_")
    (click,) = clicks_of(await stored_events(attribution_app, tenant))
    assert (click.content_id, click.product_id, click.ad_id) == ("vid-2", None, None)


async def test_openapi_documents_the_redirect(attribution: httpx.AsyncClient) -> None:
    spec = (await attribution.get("/openapi.json")).json()
    operation = spec["paths"]["/r/{code}"]["get"]
    assert "Location" in operation["responses"]["302"]["headers"]
    assert "text/html" in operation["responses"]["404"]["content"]
    assert "security" not in operation


async def test_a_storage_failure_still_sends_the_viewer_on(
    attribution: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    code: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database went away"))

    monkeypatch.setattr(events_service, "store_events", broken)
    response = await attribution.get(f"/r/{code}", params={"uid": "u-1"})
    assert response.status_code == 302
    assert response.headers["location"] == DESTINATION
    assert await stored_events(attribution_app, tenant) == {}
