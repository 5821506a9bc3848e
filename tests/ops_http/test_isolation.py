"""Tenant isolation on every route of both services, table-driven.

Tenant A gets one of everything (``world.py``). Then, for every route either app serves —
the list is read from ``app.routes``, so a new route without an entry in ``CASES`` fails
``test_every_route_has_an_isolation_case`` — a fresh tenant B sends a request naming A's
objects with B's own admin token, and the answer must reveal nothing of A: 404 for A's
objects, an empty page for lists, B's own (default) settings, zero funnels, empty reports;
writes naming A's ids create B's own objects (ids are per tenant) and never touch, replay or
conflict with A's. Afterwards every object of A, read back with A's token, is unchanged.
Public routes (probes, docs, the redirect, the dashboard page) carry no tenant data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared.auth import mint_token
from shared.errors import PROBLEM_JSON
from shared.ratelimit import flat_routes
from tests.conftest import TEST_SECRET, auth, new_tenant
from tests.ops_http.apps import unstarted_apps
from tests.ops_http.world import (
    RANGE,
    World,
    build_world,
    experiment_body,
    iso,
    order_body,
    snapshot,
)

Ids = dict[str, str]
Json = dict[str, Any]
Check = Callable[[httpx.Response, World], list[str]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One request of tenant B naming A's objects, and what its answer must be."""

    service: str = ""
    json: Callable[[World], Any] | None = None
    params: Callable[[Ids], dict[str, str]] | None = None
    check: Check | None = None
    why_public: str = ""


def status(expected: int) -> Check:
    def check(response: httpx.Response, world: World) -> list[str]:
        if response.status_code != expected:
            return [f"expected {expected}, got {response.status_code}: {response.text[:300]}"]
        if expected >= 400 and response.headers.get("content-type") != PROBLEM_JSON:
            return [f"a {expected} that is not problem+json"]
        return []

    return check


NOT_FOUND = status(404)
CREATED_OWN = status(201)  # ids are per tenant: B's own, new object under the same id
NO_SUCH_REFERENCE = status(422)  # A's objects are not B's to refer to


Body = Any  # a response's parsed JSON


def answer(expected: int, check_body: Callable[[Body, World], list[str]]) -> Check:
    """The status must be ``expected``; then ``check_body`` looks at the JSON body."""

    def check(response: httpx.Response, world: World) -> list[str]:
        if response.status_code != expected:
            return [f"expected {expected}, got {response.status_code}: {response.text[:300]}"]
        return check_body(response.json(), world)

    return check


def ok(check_body: Callable[[Body, World], list[str]]) -> Check:
    return answer(200, check_body)


def none_listed(key: str, leak: str) -> Check:
    """A 200 whose ``body[key]`` is empty; ``leak`` says what anything in it would mean."""
    return ok(lambda body, world: [f"{leak}: {str(body[key])[:300]}"] if body[key] else [])


empty_page = none_listed("items", "B sees A's items")
no_integrations = none_listed("integrations", "B's list shows A's shops")
empty_users = none_listed("users", "B's funnel users are A's")
no_conversions = none_listed("users", "B's time to convert counts A's users")


@ok
def own_settings(body: Body, world: World) -> list[str]:
    problems = []
    if body["timezone"] == "Asia/Shanghai" or body["currency"] == "CNY":
        problems.append(f"B sees A's settings: {body}")
    if body["webhook_secret_set"] or body.get("webhook_secret"):
        problems.append("B sees A's webhook secret as set")
    return problems


@ok
def settings_put(body: Body, world: World) -> list[str]:
    return [] if body["timezone"] == "Europe/Paris" else [f"not B's own settings: {body}"]


def sync_ok(response: httpx.Response, world: World) -> list[str]:
    return [] if response.status_code == 200 else [f"sync answered {response.status_code}"]


@ok
def changes_without_a(body: Body, world: World) -> list[str]:
    leaked = [c for c in body["changes"] if c["tenant_id"] == world.tenant]
    return [f"B's feed shows {len(leaked)} change(s) of A"] if leaked else []


@ok
def events_are_bs_own(body: Body, world: World) -> list[str]:
    # A's event ids are B's to use: new for B, never duplicates of A's.
    if body["accepted"] != 2 or body["duplicates"] != 0:
        return [f"A's event ids counted against B: {body}"]
    return []


def _no_credits(body: Body, world: World) -> list[str]:
    return [f"B's order carries A's credits: {body['credits']}"] if body.get("credits") else []


# A's exact body under A's order id: B's first post of its own order (201), never a replay
# (200) or a conflict (409) with A's, which would say that A's order exists.
order_is_bs_own = answer(201, _no_credits)


@ok
def zero_funnel(body: Body, world: World) -> list[str]:
    users = [s["users"] for s in body["steps"]]
    users += [s["users"] for b in body.get("breakdown") or [] for s in b["steps"]]
    return [f"B's funnel counts A's users: {body}"] if any(users) else []


@ok
def no_interactions(body: Body, world: World) -> list[str]:
    shown = [body[k] for k in ("accounts", "contents", "days", "unmatched_replies") if body[k]]
    totals = body["totals"]
    if totals["comments"] or totals["dms"] or shown or body["unanswered"]["items"]:
        return [f"B's interactions report shows A's conversations: {str(body)[:300]}"]
    return []


@ok
def empty_report(body: Body, world: World) -> list[str]:
    problems = []
    if body.get("rows"):
        problems.append(f"B's report has A's rows: {body['rows'][:2]}")
    for row in body.get("by_format") or []:
        if any(row.get(k) not in (0, "0", "0.00", None) for k in ("impressions", "clicks", "gmv")):
            problems.append(f"B's by_format row has A's figures: {row}")
    if any(point["value"] not in (0, "0", "0.00") for point in body.get("points") or []):
        problems.append(f"B's timeseries has A's data: {body['points'][:3]}")
    if body.get("currency") == "CNY":
        problems.append("B's report is in A's currency")
    return problems


@ok
def empty_data_driven(body: Body, world: World) -> list[str]:
    if body["channels"] or body["converting_paths"] or body["non_converting_paths"]:
        return [f"B's data-driven report has A's journeys: {str(body)[:300]}"]
    return ["B's data-driven report is in A's currency"] if body["currency"] == "CNY" else []


@ok
def empty_fraud(body: Body, world: World) -> list[str]:
    return [f"B's fraud report has A's verdicts: {body}"] if body["by_rule"] or body["rows"] else []


@ok
def no_trend(body: Body, world: World) -> list[str]:
    entered = [p["entered"] for p in body["points"]]
    return [f"B's funnel trend counts A's users: {body}"] if any(entered) else []


def a_funnel(w: World) -> dict[str, Any]:
    """A funnel A's data would fill: its content, its events, its order."""
    return {
        "steps": [{"type": "impression"}, {"type": "view"}, {"type": "click"}, {"type": "order"}],
        **RANGE,
        "filters": {"content_id": w.ids["content"]},
    }


def naming_a(*fields: str, **values: Any) -> Callable[[World], Json]:
    """A body whose ``fields`` hold A's ids (``ad_id``: A's ad), besides ``values``."""
    return lambda w: {**{name: w.ids[name.removesuffix("_id")] for name in fields}, **values}


def filled(template: str, ids: Ids) -> str:
    """The route's path naming A's objects: ``{content_id}`` is ``ids["content"]``, ``{code}``
    is ``ids["code"]``."""
    return template.format_map({**ids, **{f"{name}_id": value for name, value in ids.items()}})


def public(why: str) -> Case:
    return Case(why_public=why)


def refund(world: World) -> dict[str, Any]:
    return {"refund_id": world.ids["refund"], "occurred_at": iso(100), "amount": "1.00"}


CASES: dict[tuple[str, str, str], Case] = {}


def cases(service: str, table: dict[tuple[str, str], Case]) -> None:
    for (method, path), case in table.items():
        CASES[(service, method, path)] = dataclasses.replace(case, service=service)


def _crud(plural: str, key: str, body: Callable[[World], Any]) -> dict[tuple[str, str], Case]:
    item = (
        f"/v1/{plural}/{{{key}_id}}" if plural != "tracking-links" else "/v1/tracking-links/{code}"
    )
    table = {
        ("GET", f"/v1/{plural}"): Case(check=empty_page),
        ("GET", item): Case(check=NOT_FOUND),
        ("DELETE", item): Case(check=NOT_FOUND),
    }
    if plural != "tracking-links":
        table[("PUT", item)] = Case(json=body, check=CREATED_OWN)
    return table


_PUBLIC_COMMON = {
    ("GET", "/healthz"): public("liveness probe"),
    ("GET", "/readyz"): public("readiness probe"),
    ("GET", "/metrics"): public("Prometheus metrics: no tenant labels"),
    ("GET", "/openapi.json"): public("API description"),
    ("GET", "/docs"): public("API docs page"),
    ("GET", "/docs/oauth2-redirect"): public("API docs page"),
    ("GET", "/redoc"): public("API docs page"),
}

cases(
    "catalog",
    {
        **_PUBLIC_COMMON,
        **_crud("accounts", "account", lambda w: {"platform": "tiktok", "handle": "@b"}),
        **_crud(
            "products",
            "product",
            lambda w: {"title": "B's", "price": "1.00", "currency": "EUR"},
        ),
        **_crud("campaigns", "campaign", lambda w: {"name": "B's"}),
        **_crud("tracking-links", "code", lambda w: None),
        # A content or an ad refers to an account, or a campaign and content, that B lacks.
        **{
            key: case
            for key, case in _crud(
                "contents",
                "content",
                naming_a("account_id", kind="video", title="B's"),
            ).items()
            if key[0] != "PUT"
        },
        ("PUT", "/v1/contents/{content_id}"): Case(
            json=naming_a("account_id", kind="video", title="B's"),
            check=NO_SUCH_REFERENCE,
        ),
        **{
            key: case for key, case in _crud("ads", "ad", lambda w: None).items() if key[0] != "PUT"
        },
        ("PUT", "/v1/ads/{ad_id}"): Case(
            json=naming_a("campaign_id", "content_id", format="native"),
            check=NO_SUCH_REFERENCE,
        ),
        ("PUT", "/v1/contents/{content_id}/products/{product_id}"): Case(
            json=lambda w: {"placement": "pinned"},
            check=NOT_FOUND,
        ),
        ("GET", "/v1/contents/{content_id}/products"): Case(check=NOT_FOUND),
        ("GET", "/v1/contents/{content_id}/products/{product_id}"): Case(
            check=NOT_FOUND,
        ),
        ("DELETE", "/v1/contents/{content_id}/products/{product_id}"): Case(
            check=NOT_FOUND,
        ),
        ("PUT", "/v1/ads/{ad_id}/spend/{day}"): Case(
            json=lambda w: {"amount": "99.00", "currency": "CNY"},
            check=NOT_FOUND,
        ),
        ("GET", "/v1/ads/{ad_id}/spend"): Case(check=NOT_FOUND),
        ("GET", "/v1/ads/{ad_id}/spend/{day}"): Case(check=NOT_FOUND),
        ("DELETE", "/v1/ads/{ad_id}/spend/{day}"): Case(check=NOT_FOUND),
        ("POST", "/v1/tracking-links"): Case(
            json=naming_a("content_id", "ad_id", destination_url="https://b.example/"),
            check=NO_SUCH_REFERENCE,
        ),
        ("GET", "/v1/changes"): Case(check=changes_without_a),
    },
)

_REPORT_PARAMS = {
    "ads": lambda ids: {**RANGE, "campaign_id": ids["campaign"]},
    "contents": lambda ids: {**RANGE, "account_id": ids["account"]},
    "timeseries": lambda ids: {**RANGE, "metric": "clicks", "content_id": ids["content"]},
}

cases(
    "attribution",
    {
        **_PUBLIC_COMMON,
        ("GET", "/r/{code}"): public("tracking-link redirect: resolves a code for any viewer"),
        ("GET", "/dashboard"): public("static page; its data comes from the API with a token"),
        ("GET", "/dashboard/"): public("static page"),
        ("GET", "/dashboard/static/{asset_path:path}"): public("static files"),
        ("GET", "/v1/settings"): Case(check=own_settings),
        ("PUT", "/v1/settings"): Case(
            json=lambda w: {"timezone": "Europe/Paris", "webhook_secret": None},
            check=settings_put,
        ),
        ("POST", "/v1/sync"): Case(check=sync_ok),
        ("POST", "/v1/events"): Case(
            json=lambda w: {
                "events": [
                    {
                        "event_id": event_id,
                        "type": "view",
                        "occurred_at": iso(5),
                        "user_id": "viewer-b",
                        "content_id": w.ids["content"],
                    }
                    for event_id in w.event_ids[:2]
                ]
            },
            check=events_are_bs_own,
        ),
        ("GET", "/v1/events/rejected"): Case(check=empty_page),
        # How far the writer is behind the ingest buffer: a count over every tenant's posts,
        # no tenant's data (and the direct path here: always caught up).
        ("GET", "/v1/ingest/lag"): Case(check=status(200)),
        ("POST", "/v1/orders"): Case(
            json=lambda w: order_body(w.ids["order"]),
            check=order_is_bs_own,
        ),
        ("POST", "/v1/orders/{order_id}/refunds"): Case(json=refund, check=NOT_FOUND),
        ("GET", "/v1/orders/{order_id}"): Case(check=NOT_FOUND),
        ("GET", "/v1/orders/{order_id}/attribution"): Case(
            params=lambda ids: {"model": "linear"},
            check=NOT_FOUND,
        ),
        ("POST", "/v1/funnels"): Case(
            json=lambda w: {**a_funnel(w), "breakdown": "ad_id"},
            check=zero_funnel,
        ),
        ("POST", "/v1/funnels/time-to-convert"): Case(json=a_funnel, check=no_conversions),
        ("POST", "/v1/funnels/trends"): Case(json=a_funnel, check=no_trend),
        ("POST", "/v1/funnels/users"): Case(
            json=lambda w: {**a_funnel(w), "step": 0, "status": "reached"},
            check=empty_users,
        ),
        ("GET", "/v1/integrations"): Case(check=no_integrations),
        ("GET", "/v1/integrations/{integration_id}"): Case(check=NOT_FOUND),
        # Integration ids are global (the shop's webhook URL carries no tenant): B cannot take
        # or change A's, and is told the id is taken.
        ("PUT", "/v1/integrations/{integration_id}"): Case(
            json=lambda w: {"platform": "woocommerce", "shop": "https://b.example", "secret": "b"},
            check=status(409),
        ),
        ("GET", "/v1/integrations/{integration_id}/deliveries"): Case(check=NOT_FOUND),
        ("GET", "/v1/integrations/{integration_id}/unmatched-products"): Case(
            check=NOT_FOUND,
        ),
        # Authenticated by the shop's signature, not a token: a body B signs with its own
        # secret is refused and stores nothing among A's deliveries.
        ("POST", "/v1/integrations/{integration_id}/webhooks"): Case(
            json=lambda w: {"id": 1, "financial_status": "paid"},
            check=status(401),
        ),
        **{
            ("GET", f"/v1/reports/{name}"): Case(params=params, check=empty_report)
            for name, params in _REPORT_PARAMS.items()
        },
        ("GET", "/v1/attribution/data-driven"): Case(
            params=lambda ids: RANGE,
            check=empty_data_driven,
        ),
        ("GET", "/v1/reports/fraud"): Case(params=lambda ids: RANGE, check=empty_fraud),
        # Experiment ids are per tenant: B's PUT naming A's id creates B's own experiment.
        ("PUT", "/v1/experiments/{experiment_id}"): Case(
            json=lambda w: experiment_body(w.ids),
            check=status(201),
        ),
        ("GET", "/v1/experiments"): Case(
            check=none_listed("experiments", "B's list shows A's experiments")
        ),
        ("GET", "/v1/experiments/{experiment_id}/results"): Case(check=NOT_FOUND),
        ("GET", "/v1/reports/interactions"): Case(
            params=lambda ids: {**RANGE, "account_id": ids["account"]},
            check=no_interactions,
        ),
        ("GET", "/v1/reports/scorecard"): Case(
            params=lambda ids: {**RANGE, "level": "campaign"},
            check=none_listed("items", "B's scorecard shows A's campaigns"),
        ),
        ("GET", "/v1/reports/activities"): Case(
            params=lambda ids: RANGE,
            check=none_listed("activities", "B's report shows A's activities"),
        ),
        # A's content is not in B's catalog read model: its page and timeline are not found.
        ("GET", "/v1/reports/contents/{content_id}"): Case(
            params=lambda ids: RANGE, check=NOT_FOUND
        ),
        ("GET", "/v1/reports/live/{content_id}/timeline"): Case(check=NOT_FOUND),
    },
)


def served_routes(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    return {
        (service, method, route.path)
        for route in flat_routes(app.routes)
        for method in route.methods or ()
        if method != "HEAD"
    }


def test_every_route_has_an_isolation_case() -> None:
    served = set().union(*(served_routes(s, app) for s, app in unstarted_apps().items()))
    missing = sorted(served - set(CASES))
    assert not missing, (
        "routes without a tenant-isolation case (add one to CASES in "
        f"tests/ops_http/test_isolation.py): {missing}"
    )


async def test_tenant_b_cannot_see_or_touch_tenant_a_anywhere(
    catalog_app: FastAPI,
    attribution_app: FastAPI,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    tenant: str,
) -> None:
    world = await build_world(catalog, attribution, tenant)
    before = await snapshot(world, catalog, attribution, attribution_app)
    clients = {"catalog": catalog, "attribution": attribution}
    served = served_routes("catalog", catalog_app) | served_routes("attribution", attribution_app)
    failures: list[str] = []
    tried = 0
    for key in sorted(served):
        case = CASES.get(key)
        assert case is not None, f"no isolation case for {key}"
        if case.why_public:
            continue
        assert case.check is not None
        service, method, template = key
        # A fresh tenant per route: what one request of B creates cannot hide another's leak.
        other = new_tenant()
        token = mint_token(TEST_SECRET, other, ["admin", "catalog:sync"])
        response = await clients[service].request(
            method,
            filled(template, world.ids),
            json=case.json(world) if case.json else None,
            params=case.params(world.ids) if case.params else None,
            headers=auth(token),
        )
        tried += 1
        failures += [f"{method} {key[2]}: {problem}" for problem in case.check(response, world)]
    after = await snapshot(world, catalog, attribution, attribution_app, strict=False)
    changed = sorted(name for name in before if before[name] != after[name])
    assert not failures, "tenant B saw or touched tenant A:\n" + "\n".join(failures)
    assert not changed, f"tenant A's objects changed by tenant B's requests: {changed}"
    assert tried >= 40


@pytest.mark.parametrize("service", ["catalog", "attribution"])
def test_public_routes_are_outside_v1(service: str) -> None:
    """Everything under /v1/ is authenticated and tenant-scoped; public means outside it."""
    for (svc, _, path), case in CASES.items():
        if svc == service and case.why_public:
            assert not path.startswith("/v1/"), path
