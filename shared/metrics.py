"""Prometheus metrics: RED metrics per route template, plus the /metrics endpoint.

When ``PROMETHEUS_MULTIPROC_DIR`` is set (several uvicorn workers), /metrics aggregates every
worker's samples through prometheus-client's multiprocess collector.
"""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration by method and route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

UNMATCHED_ROUTE = "<unmatched>"

# Revoked-token list: alert on time() - timestamp > 30 (past that, authenticated routes are 503).
REVOCATION_RELOADED = Gauge(
    "clipfunnel_revocation_reload_timestamp_seconds",
    "Unix time of the last successful reload of the revoked-token list (stalest worker)",
    multiprocess_mode="livemin",
)
RATE_LIMIT_STORAGE_ERRORS = Counter(
    "clipfunnel_rate_limit_storage_errors_total",
    "Failures of the shared rate-limit storage (Redis); after each, limits stay in process 5 s",
)
REVOCATION_RELOAD_FAILURES = Counter(
    "clipfunnel_revocation_reload_failures_total",
    "Failed reloads of the revoked-token list",
)


def metrics_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            # prometheus_client ships this constructor without annotations.
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            payload = generate_latest(registry)
        else:
            payload = generate_latest(REGISTRY)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    return router
