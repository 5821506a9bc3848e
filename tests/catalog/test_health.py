"""Operations endpoints: liveness, readiness, and Prometheus metrics by route template."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from services.catalog.app import MIGRATIONS
from shared.metrics import UNMATCHED_ROUTE
from shared.migrate import head_revision
from tests.catalog.factories import Shop, account_body, assert_problem, new_id

Labels = tuple[tuple[str, str], ...]


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, Labels], float]:
    """Every sample of /metrics, keyed by (sample name, sorted labels)."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_probes_and_docs_answer_without_a_token(catalog: httpx.AsyncClient) -> None:
    assert (await catalog.get("/healthz")).status_code == 200
    ready = await catalog.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == head_revision(MIGRATIONS)
    assert (await catalog.get("/docs")).status_code == 200
    openapi = await catalog.get("/openapi.json")
    assert openapi.status_code == 200
    assert "/v1/accounts/{account_id}" in openapi.json()["paths"]


async def test_readyz_is_503_when_the_schema_is_not_at_head(
    catalog: httpx.AsyncClient, catalog_app: FastAPI
) -> None:
    async with catalog_app.state.engine.begin() as conn:
        await conn.execute(text(f"UPDATE {MIGRATIONS.version_table} SET version_num = 'older'"))

    response = await catalog.get("/readyz")

    assert_problem(response, 503)
    assert (await catalog.get("/healthz")).status_code == 200


async def test_request_metrics_are_labelled_by_route_template_never_raw_path(
    shop: Shop, catalog: httpx.AsyncClient
) -> None:
    account_id = new_id("metric")
    template = "/v1/accounts/{account_id}"
    before = await scrape(catalog)

    await shop.put(f"/v1/accounts/{account_id}", account_body())
    await shop.get(f"/v1/accounts/{account_id}")
    assert (await shop.request("GET", f"/v1/accounts/{account_id}-missing")).status_code == 404
    assert (await shop.request("GET", f"/v1/{account_id}/nowhere")).status_code == 404
    response = await catalog.get("/metrics")
    after = await scrape(catalog)

    assert account_id not in response.text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for method, status in (("PUT", "201"), ("GET", "200"), ("GET", "404")):
        labels = {"method": method, "route": template, "status": status}
        assert delta("http_requests_total", **labels) == 1, labels
    assert delta("http_request_duration_seconds_count", method="GET", route=template) == 2
    # A path no route matches is counted under one placeholder, not under its raw path.
    unmatched = {"method": "GET", "route": UNMATCHED_ROUTE, "status": "404"}
    assert delta("http_requests_total", **unmatched) == 1


async def test_catalog_changes_are_counted_by_entity_and_op(
    shop: Shop, catalog: httpx.AsyncClient
) -> None:
    name = "clipfunnel_catalog_changes_total"
    before = await scrape(catalog)

    account = await shop.account()
    path = f"/v1/accounts/{account['id']}"
    await shop.put(path, account_body(), expect=(200,))  # identical: not a change
    await shop.put(path, account_body(handle="@other"), expect=(200,))
    await shop.delete(path)
    after = await scrape(catalog)

    upserts = value(after, name, entity="account", op="upsert") - value(
        before, name, entity="account", op="upsert"
    )
    deletes = value(after, name, entity="account", op="delete") - value(
        before, name, entity="account", op="delete"
    )
    assert (upserts, deletes) == (2, 1)
