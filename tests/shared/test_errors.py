"""An unhandled exception is answered 500 problem+json, and the connection stays usable."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import h11
import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from services.attribution.app import MIGRATIONS
from services.attribution.models import RevokedToken
from shared.app import build_app
from shared.errors import PROBLEM_JSON
from tests.conftest import DatabaseFactory, attribution_settings


class Boom(RuntimeError):
    """A bug no handler knows."""


def app_with_a_bug(database_url: str, var_dir: Path) -> FastAPI:
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom() -> dict[str, str]:
        raise Boom("the handler has a bug")

    @router.get("/v1/fine")
    async def fine() -> dict[str, str]:
        return {"fine": "yes"}

    return build_app(
        title="t",
        description="t",
        settings=attribution_settings(database_url, var_dir),
        migrations=MIGRATIONS,
        revoked_tokens=RevokedToken,
        routers=[router],
        configure_logs=False,
    )


@pytest.fixture
async def app(make_database: DatabaseFactory, var_dir: Path) -> AsyncIterator[FastAPI]:
    application = app_with_a_bug(make_database(MIGRATIONS), var_dir)
    async with application.router.lifespan_context(application):
        yield application


def served_500s() -> float:
    labels = {"method": "GET", "route": "/v1/boom", "status": "500"}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_an_unhandled_exception_is_a_500_problem_and_the_next_request_is_served(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    before = served_500s()
    caplog.set_level(logging.ERROR, logger="clipfunnel.errors")
    # raise_app_exceptions (the default): an exception escaping the app would fail the request.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/v1/boom", headers={"X-Request-ID": "req-boom"})
        assert response.status_code == 500
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["x-request-id"] == "req-boom"
        problem = response.json()
        assert problem["status"] == 500
        assert problem["instance"] == "/v1/boom"
        assert "has been logged" in problem["detail"]
        assert "bug" not in response.text  # the exception's message stays in the log
        assert (await c.get("/v1/fine")).json() == {"fine": "yes"}
    assert served_500s() == before + 1
    [record] = [r for r in caplog.records if r.name == "clipfunnel.errors"]
    assert record.getMessage() == "unhandled error on GET /v1/boom"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], Boom)


def exchange(conn: h11.Connection, sock_data: bytes) -> list[h11.Event]:
    conn.receive_data(sock_data)
    events: list[h11.Event] = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA or event is h11.PAUSED:
            return events
        assert isinstance(event, h11.Event)
        events.append(event)


async def read_response(
    reader: asyncio.StreamReader, conn: h11.Connection
) -> tuple[h11.Response, bytes]:
    response: h11.Response | None = None
    body = b""
    while True:
        data = await reader.read(65536)
        assert data, "the server closed the connection"
        for event in exchange(conn, data):
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, body


async def test_after_a_500_the_kept_alive_connection_serves_the_next_request(
    app: FastAPI,
) -> None:
    """Over a real uvicorn server and one TCP connection, two requests in turn."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # a connection waits in the backlog until the server accepts it
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = h11.Connection(h11.CLIENT)
        answers = []
        for path in ("/v1/boom", "/v1/fine"):
            request = h11.Request(method="GET", target=path, headers=[("Host", "t")])
            writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            answers.append(await read_response(reader, conn))
            conn.start_next_cycle()
        (first, first_body), (second, second_body) = answers
        assert first.status_code == 500
        assert (b"content-type", PROBLEM_JSON.encode()) in first.headers
        assert (b"connection", b"close") not in first.headers
        assert b'"status":500' in first_body
        assert second.status_code == 200
        assert second_body == b'{"fine":"yes"}'
        writer.close()
        await writer.wait_closed()
    finally:
        server.should_exit = True
        await serving
        listener.close()
