"""Schemathesis against both services' OpenAPI schemas, in process (ASGI), authenticated.

Every operation of both schemas gets ``EXAMPLES`` generated requests (valid and invalid
bodies, parameters and ids; ``CLIPFUNNEL_FUZZ_EXAMPLES`` raises it for a longer run), so
each service gets over ``MIN_REQUESTS_PER_SERVICE`` (the last test counts and prints them),
sent with an admin token of one tenant (for the catalog also ``catalog:sync``, for
``/v1/changes``). Checks: no 5xx; the status code, content type,
headers and body of every answer are the ones the schema documents; every 4xx/5xx is
``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail`` (except the
documented HTML 404 page of ``GET /r/{code}``, which a browser shows).

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
from hypothesis import HealthCheck, given, settings
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
MIN_REQUESTS_PER_SERVICE = 1000
TENANT = "fuzz-tenant"
ADMIN = {"Authorization": "Bearer " + mint_token(TEST_SECRET, TENANT, ["admin", "catalog:sync"])}

# Pages whose errors are meant for people, not programs (documented as text/html).
HTML_ERRORS = {("GET", "/r/{code}")}


# Requests checked, per (service, method, path); the service is the one test_fuzz is driving.
SENT: dict[tuple[str, str, str], int] = {}
DRIVING: list[str] = [""]


def problem_json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json with the four members the contract names."""
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
        # A case generated without (or with a broken) Authorization header is sent with the
        # admin token all the same, so it is no longer the invalid request schemathesis made:
        # its acceptance says nothing about rejecting invalid data.
        meta = case.meta
        if meta is not None and meta.is_negative_at(ParameterLocation.HEADER):
            checks = [check for check in CHECKS if check is not negative_data_rejection]
        else:
            checks = CHECKS
        case.call_and_validate(headers=ADMIN, checks=checks)

    DRIVING[0] = service
    run()
    assert SENT.get((service, method.upper(), path), 0) >= 1, "no request reached the checks"


def test_fuzz_volume_per_service() -> None:
    """Runs after every test_fuzz case (pytest keeps a module's order): the volume sent."""
    operations = _operations()
    if any((p.values[0], p.values[1].upper(), p.values[2]) not in SENT for p in operations):
        pytest.skip("only part of test_fuzz ran (a -k or node-id selection)")
    for service in ("catalog", "attribution"):
        sent = sum(n for (svc, _, _), n in SENT.items() if svc == service)
        count = sum(1 for p in operations if p.values[0] == service)
        print(
            f"fuzz {service}: {sent:,} generated requests over {count} operations, 0 server errors"
        )
        assert sent >= MIN_REQUESTS_PER_SERVICE, (
            f"{service}: only {sent} generated requests (raise EXAMPLES)"
        )
