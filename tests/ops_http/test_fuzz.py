"""Schemathesis against both services' OpenAPI schemas, in process (ASGI), authenticated.

Every operation of both schemas gets ``EXAMPLES`` generated requests (valid and invalid
bodies, parameters and ids; ``CLIPFUNNEL_FUZZ_EXAMPLES``, 50 by default), and each service
then runs ``STATEFUL_SCENARIOS`` stateful scenarios (``CLIPFUNNEL_FUZZ_STATEFUL``, 20 by
default): sequences of calls chained by the links schemathesis infers from the schema (the
``order_id`` a ``POST /v1/orders`` answers feeds ``GET /v1/orders/{order_id}``, its
``/attribution`` and its refunds; a ``PUT /v1/accounts/{account_id}`` feeds the account's
reads and its delete; an integration's id its webhooks and deliveries; report rows their
timeseries), so the chained requests reach stored objects instead of 404s. Each service gets
at least ``MIN_REQUESTS_PER_SERVICE`` requests (the last test counts and prints them,
stateless and stateful), sent with an admin token of one tenant (for the catalog also
``catalog:sync``, for ``/v1/changes``). Checks, on every request of both kinds: no 5xx; the
status code, content type, headers and body of every answer are the ones the schema
documents; every 4xx/5xx is ``application/problem+json`` with ``type``, ``title``, ``status``
and ``detail`` (except the documented HTML 404 page of ``GET /r/{code}``, which a browser
shows).

SQLite only: schemathesis drives the application synchronously from its own event-loop thread
(hypothesis tests are synchronous), so it cannot use the async per-backend fixtures; what it
exercises — request parsing, validation, error mapping and response shapes — is the HTTP
layer, the same on both backends, whose PostgreSQL paths the API suites run on both.
Rate limits are switched off here: the fuzzer is one token sending thousands of requests.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.auth import mint_token
from shared.errors import PROBLEM_JSON
from tests.conftest import TEST_SECRET, Templates, attribution_settings
from tests.ops_http.apps import sqlite_copy, unstarted_apps

EXAMPLES = int(os.environ.get("CLIPFUNNEL_FUZZ_EXAMPLES", "50"))
STATEFUL_SCENARIOS = int(os.environ.get("CLIPFUNNEL_FUZZ_STATEFUL", "20"))
STATEFUL_STEPS = 10  # calls per scenario at most
STATEFUL_ROUND = 10  # scenarios per hypothesis run
MIN_REQUESTS_PER_SERVICE = 1000
TENANT = "fuzz-tenant"
ADMIN = {"Authorization": "Bearer " + mint_token(TEST_SECRET, TENANT, ["admin", "catalog:sync"])}

# Pages whose errors are meant for people, not programs (documented as text/html).
HTML_ERRORS = {("GET", "/r/{code}")}


# Requests checked, per (service, method, path), and those of the stateful scenarios per
# service; the service is the one the running test is driving.
SENT: dict[tuple[str, str, str], int] = {}
STATEFUL_SENT: dict[str, int] = {}
DRIVING: list[str] = [""]
STATEFUL: list[bool] = [False]


def problem_json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json with the four members the contract names."""
    if STATEFUL[0]:
        STATEFUL_SENT[DRIVING[0]] = STATEFUL_SENT.get(DRIVING[0], 0) + 1
    else:
        key = (DRIVING[0], case.operation.method.upper(), case.operation.path)
        SENT[key] = SENT.get(key, 0) + 1
    if response.status_code < 400:
        return None
    if (case.operation.method.upper(), case.operation.path) in HTML_ERRORS:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip() == PROBLEM_JSON, (
        f"{response.status_code} answered as {content_type!r}, not {PROBLEM_JSON}"
    )
    body = response.json()
    missing = {"type", "title", "status", "detail"} - set(body)
    assert not missing, f"problem+json without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_json_errors,
]


@pytest.fixture(scope="module")
def fuzz_apps(
    _templates: Templates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, FastAPI]]:
    from services.attribution.app import MIGRATIONS as ATTRIBUTION_MIGRATIONS
    from services.attribution.app import create_app as create_attribution
    from services.catalog.app import MIGRATIONS as CATALOG_MIGRATIONS
    from services.catalog.app import create_app as create_catalog
    from services.catalog.settings import CatalogSettings

    directory = tmp_path_factory.mktemp("fuzz")
    var_dir = directory / "var"
    var_dir.mkdir()
    catalog_app = create_catalog(
        CatalogSettings(
            database_url=sqlite_copy(_templates, CATALOG_MIGRATIONS, directory),
            secret=TEST_SECRET,
            var_dir=var_dir,
            environment="test",
            public_url="http://attribution.test",
            rate_limit_per_second=0,
        ),
        configure_logs=False,
    )
    attribution_app = create_attribution(
        attribution_settings(
            sqlite_copy(_templates, ATTRIBUTION_MIGRATIONS, directory),
            var_dir,
            rate_limit_per_second=0,
        ),
        catalog_transport=httpx.ASGITransport(app=catalog_app),
        configure_logs=False,
    )
    yield catalog_app, attribution_app
    with contextlib.suppress(Exception):
        schemathesis_asgi.shutdown_lifespans()


def _seed(app: FastAPI) -> None:
    """A few objects under simple ids, so some generated requests find something."""
    with schemathesis_asgi.get_client(cast(Any, app)) as client:
        for path, body in (
            ("/v1/accounts/a", {"platform": "douyin", "handle": "@a"}),
            ("/v1/products/p", {"title": "Lipstick", "price": "10.00", "currency": "CNY"}),
            ("/v1/contents/c", {"kind": "video", "account_id": "a", "title": "Look"}),
            ("/v1/contents/c/products/p", {"placement": "product_card"}),
            ("/v1/campaigns/k", {"name": "Spring"}),
            ("/v1/ads/d", {"campaign_id": "k", "content_id": "c", "format": "native"}),
        ):
            response = client.put(path, json=body, headers=ADMIN)
            assert response.status_code in (200, 201), response.text


@pytest.fixture(scope="module")
def catalog_schema(fuzz_apps: tuple[FastAPI, FastAPI]) -> Any:
    catalog_app, _ = fuzz_apps
    # Loading the schema starts the app's lifespan in schemathesis's event-loop thread.
    schema = schemathesis.openapi.from_asgi("/openapi.json", catalog_app)
    _seed(catalog_app)
    return schema


@pytest.fixture(scope="module")
def attribution_schema(fuzz_apps: tuple[FastAPI, FastAPI], catalog_schema: Any) -> Any:
    # The catalog (started by catalog_schema) answers the attribution's POST /v1/sync.
    _, attribution_app = fuzz_apps
    return schemathesis.openapi.from_asgi("/openapi.json", attribution_app)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _operations() -> list[Any]:
    """Every operation of both schemas, read from apps that are built but not started."""
    params = []
    for service, app in unstarted_apps().items():
        for path, item in app.openapi()["paths"].items():
            for method in item:
                params.append(
                    pytest.param(service, method, path, id=f"{service} {method.upper()} {path}")
                )
    return params


def _checks_for(case: Any) -> list[Any]:
    # A case generated without (or with a broken) Authorization header is sent with the
    # admin token all the same, so it is no longer the invalid request schemathesis made:
    # its acceptance says nothing about rejecting invalid data.
    meta = case.meta
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER):
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


@pytest.mark.parametrize(("service", "method", "path"), _operations())
def test_fuzz(
    service: str, method: str, path: str, catalog_schema: Any, attribution_schema: Any
) -> None:
    schema = catalog_schema if service == "catalog" else attribution_schema
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @FUZZ_SETTINGS
    @given(case=cases)
    def run(case: Any) -> None:
        case.call_and_validate(headers=ADMIN, checks=_checks_for(case))

    DRIVING[0], STATEFUL[0] = service, False
    run()
    assert SENT.get((service, method.upper(), path), 0) >= 1, "no request reached the checks"


@pytest.mark.parametrize("service", ["catalog", "attribution"])
def test_fuzz_stateful(service: str, catalog_schema: Any, attribution_schema: Any) -> None:
    """Scenarios of calls chained by the links inferred from the schema, every answer checked."""
    schema = catalog_schema if service == "catalog" else attribution_schema
    base = schema.as_state_machine()
    linked = [name for name in dir(base) if "__" in name and not name.startswith("_")]
    assert any(not name.startswith("RANDOM__") for name in linked), "no links inferred"

    class Scenario(base):  # type: ignore[misc,valid-type]  # a class schemathesis builds
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": ADMIN}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=_checks_for(case), headers=ADMIN)

    # Rounds of a few scenarios, each a run of its own under its own seed: the services keep
    # what earlier scenarios stored, so one long run would see a replayed prefix answer
    # differently (which hypothesis reports as a flaky strategy); reproducible all the same.
    DRIVING[0], STATEFUL[0] = service, True
    try:
        for round_no in range(0, STATEFUL_SCENARIOS, STATEFUL_ROUND):
            seed(round_no)(Scenario).run(
                settings=settings(
                    FUZZ_SETTINGS,
                    max_examples=min(STATEFUL_ROUND, STATEFUL_SCENARIOS - round_no),
                    stateful_step_count=STATEFUL_STEPS,
                    derandomize=False,
                )
            )
    finally:
        STATEFUL[0] = False
    assert STATEFUL_SENT.get(service, 0) >= STATEFUL_SCENARIOS, "scenarios sent no request"


def test_fuzz_volume_per_service() -> None:
    """Runs after every test_fuzz case (pytest keeps a module's order): the volume sent."""
    operations = _operations()
    if any((p.values[0], p.values[1].upper(), p.values[2]) not in SENT for p in operations):
        pytest.skip("only part of test_fuzz ran (a -k or node-id selection)")
    if set(STATEFUL_SENT) != {"catalog", "attribution"}:
        pytest.skip("only part of test_fuzz_stateful ran (a -k or node-id selection)")
    for service in ("catalog", "attribution"):
        stateless = sum(n for (svc, _, _), n in SENT.items() if svc == service)
        stateful = STATEFUL_SENT[service]
        count = sum(1 for p in operations if p.values[0] == service)
        print(
            f"\nfuzz {service}: {stateless + stateful:,} generated requests "
            f"({stateless:,} over {count} operations at {EXAMPLES} examples each, {stateful:,} "
            f"in {STATEFUL_SCENARIOS} stateful scenarios), 0 server errors, "
            "every answer as the schema documents"
        )
        assert stateless + stateful >= MIN_REQUESTS_PER_SERVICE, (
            f"{service}: only {stateless + stateful} generated requests (raise EXAMPLES)"
        )
