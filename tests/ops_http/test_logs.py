"""Logs: one JSON object per line, access lines with request id, tenant, route, status and
duration, and never a token, a secret or a request body — whatever goes wrong.

All log output of both services (at DEBUG, so libraries' debug lines are included) is
captured while a tenant does ordinary work and many things fail: bad and expired tokens,
signed and badly signed order posts under a webhook secret, a settings PUT carrying the
secret, malformed and rejected event batches, validation errors, an unexpected exception and
database errors whose messages quote the request's values. Every value that must stay out of
the logs carries a unique marker, and no line may contain one.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
import structlog
import time_machine
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.attribution.orders.signature import HEADER, sign
from shared.auth import mint_token
from shared.observability import _QUIET_LOGGERS, configure_logging
from tests.conftest import TEST_SECRET, auth

MARK = f"LEAK{uuid.uuid4().hex[:12]}"
WEBHOOK_SECRET = f"whsec-{MARK}-0123456789"
ACCESS_FIELDS = {"request_id", "tenant", "route", "status", "duration_ms", "method"}
# The test's clock (the services' too): after the order's occurred_at, so it is not in the future.
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> Iterator[None]:
    """The clock set at NOW and running, so tokens and signatures are minted at known instants."""
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """configure_logging as the services do, at DEBUG, into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    configure_logging("DEBUG", json=True)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def lenient(attribution_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that receives the 500 of an unhandled error instead of re-raising it."""
    transport = httpx.ASGITransport(app=attribution_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://attribution.test") as c:
        yield c


class Probe(BaseModel):
    quantity: int


async def test_no_token_secret_or_body_in_any_log_line(
    clock: None,
    log_buffer: io.StringIO,
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    lenient: httpx.AsyncClient,
    attribution_app: FastAPI,
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = mint_token(TEST_SECRET, tenant, ["admin"], token_id=f"jti{MARK}")
    h = auth(token)
    expired = mint_token(TEST_SECRET, tenant, ["admin"], ttl_seconds=1, now=NOW.timestamp() - 60)
    forged = token[:-6] + "AAAAAA"
    secrets = [token, expired, forged, WEBHOOK_SECRET, *token.split(".")[1:]]

    # Auth failures of every kind.
    for headers in (
        {},
        auth(expired),
        auth(forged),
        auth(f"cf1.{MARK}.{MARK}"),
        {"Authorization": f"Basic {MARK}"},
    ):
        response = await catalog.get("/v1/accounts", headers=headers)
        assert response.status_code == 401

    # Ordinary work, with body content marked.
    response = await catalog.put(
        "/v1/accounts/acc1", json={"platform": "douyin", "handle": f"@{MARK}"}, headers=h
    )
    assert response.status_code == 201
    response = await catalog.put("/v1/products/p1", json={"title": MARK, "price": "x"}, headers=h)
    assert response.status_code == 422

    # The webhook secret, set and then required on order posts.
    response = await attribution.put(
        "/v1/settings", json={"webhook_secret": WEBHOOK_SECRET, "currency": "CNY"}, headers=h
    )
    assert response.status_code == 200
    order = {
        "order_id": "o1",
        "status": "paid",
        "occurred_at": "2026-11-01T12:00:00+08:00",
        "user_id": f"buyer-{MARK}",
        "currency": "CNY",
        "items": [{"product_id": "p1", "quantity": 1, "unit_price": "10.00"}],
    }
    raw = orjson.dumps(order)
    signature = sign(WEBHOOK_SECRET, raw, int(NOW.timestamp()))
    secrets.append(signature.split("v1=")[1])
    for headers, expected in (
        ({HEADER: signature}, 201),
        ({HEADER: signature}, 200),  # replay
        ({HEADER: signature.replace("v1=", "v1=0")}, 401),
        ({}, 401),
    ):
        response = await attribution.post(
            "/v1/orders",
            content=raw,
            headers={**h, **headers, "Content-Type": "application/json"},
        )
        assert response.status_code == expected, response.text

    # Events: malformed JSON, a wrong shape, every event rejected, some rejected.
    for body in (
        b'{"events": [{"event_id": "' + MARK.encode() + b'", ',
        orjson.dumps({"events": MARK}),
        orjson.dumps({"events": [{"event_id": "e1", "type": MARK, "user_id": MARK}]}),
        orjson.dumps(
            {
                "events": [
                    {
                        "event_id": "e2",
                        "type": "view",
                        "occurred_at": "2026-11-01T12:00:00Z",
                        "user_id": f"u-{MARK}",
                        "content_id": "c1",
                        "properties": {"note": MARK},
                    },
                    {"event_id": "e3", "type": "view", "user_id": MARK},
                ]
            }
        ),
    ):
        response = await attribution.post(
            "/v1/events", content=body, headers={**h, "Content-Type": "application/json"}
        )
        assert response.status_code in (200, 400, 422), response.text

    # An unexpected exception, and database errors, whose messages quote the request.
    async def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"failed on body {{'webhook_secret': '{WEBHOOK_SECRET}'}} with Authorization: "
            f"Bearer {token}"
        )

    async def invalid(*args: Any, **kwargs: Any) -> Any:
        Probe.model_validate({"quantity": MARK})

    async def integrity(*args: Any, **kwargs: Any) -> Any:
        raise IntegrityError(
            "INSERT INTO tenant_settings (tenant_id, webhook_secret) VALUES (?, ?)",
            (tenant, WEBHOOK_SECRET),
            Exception(f"UNIQUE constraint failed\nDETAIL: Key (x)=({MARK}) already exists."),
        )

    async def real_database_error(session: Any, *args: Any, **kwargs: Any) -> Any:
        # A genuine driver error whose message quotes the value (PostgreSQL does).
        await session.execute(
            text("SELECT CAST(CAST(:v AS TEXT) AS INTEGER) + 1"), {"v": f"x{MARK}"}
        )
        await session.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": MARK})

    from services.attribution.settings import router as settings_router

    for failure in (explode, invalid, integrity, real_database_error):
        monkeypatch.setattr(settings_router, "update_settings", failure)
        response = await lenient.put(
            "/v1/settings", json={"timezone": "UTC", "webhook_secret": WEBHOOK_SECRET}, headers=h
        )
        # (SQLite calls a missing table an OperationalError, answered as an outage: 503.)
        assert response.status_code in (500, 503), response.text
        assert response.headers["content-type"] == "application/problem+json"
    try:
        await explode()
    except RuntimeError:
        # What uvicorn logs after the 500 has been sent ("Exception in ASGI application").
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")

    lines = log_buffer.getvalue().splitlines()
    assert len(lines) > 20
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    leaks = [
        (secret[:24], line[:300])
        for line in lines
        for secret in [MARK, *secrets]
        if secret and secret in line
    ]
    assert not leaks, "secrets, tokens or body content in the logs:\n" + "\n".join(
        f"{s}…: {line}" for s, line in leaks
    )
    assert not any("Bearer" in line and "REDACTED" not in line for line in lines)

    # Exceptions are logged with their tracebacks (redacted, not dropped).
    errors = [r for r in records if r.get("level") == "error"]
    assert sum("exception" in r for r in errors) >= 4, errors
    assert any("RuntimeError" in r.get("exception", "") for r in errors)
    assert any("IntegrityError" in r.get("exception", "") for r in errors)
    assert any("[parameters hidden]" in r.get("exception", "") for r in errors)

    access = [r for r in records if r.get("logger") == "clipfunnel.access"]
    assert len(access) >= 20
    for record in access:
        assert set(record) >= ACCESS_FIELDS, record
        assert len(record["request_id"]) >= 16
        assert isinstance(record["duration_ms"], int | float)
        assert isinstance(record["status"], int)
        assert "{" in record["route"] or record["route"].startswith("/")
    settings_puts = [r for r in access if r["route"] == "/v1/settings" and r["method"] == "PUT"]
    assert {r["status"] for r in settings_puts} - {503} == {200, 500}
    assert {r["tenant"] for r in settings_puts} == {tenant}
    unauthenticated = [r for r in access if r["status"] == 401 and r["route"] == "/v1/accounts"]
    assert len(unauthenticated) == 5
    assert {r["tenant"] for r in unauthenticated} == {None}
    assert any(r["route"] == "/v1/accounts/{account_id}" and r["status"] == 201 for r in access)
    assert len({r["request_id"] for r in access}) == len(access)
    del attribution_app


async def test_a_given_request_id_is_logged_and_echoed(
    log_buffer: io.StringIO, catalog: httpx.AsyncClient
) -> None:
    response = await catalog.get("/healthz", headers={"X-Request-ID": "rid-123"})
    assert response.headers["x-request-id"] == "rid-123"
    response = await catalog.get("/v1/accounts", headers={"X-Request-ID": "rid-456"})
    assert response.headers["x-request-id"] == "rid-456"
    records = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    (line,) = [
        r
        for r in records
        if r.get("request_id") == "rid-456" and r["logger"] == "clipfunnel.access"
    ]
    assert line["status"] == 401
    assert line["route"] == "/v1/accounts"
