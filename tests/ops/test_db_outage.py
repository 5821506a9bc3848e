"""Database outage: PostgreSQL stops under a running attribution service, then comes back.

The test starts a throwaway cluster of its own (initdb + pg_ctl on a free loopback port), so it
can stop it hard (``pg_ctl stop -m immediate``) without touching any shared server. While the
database is down the service stays alive, ``/healthz`` answers 200, ``/readyz`` 503, and reads
and writes 503 problem+json with ``Retry-After``; once the database is back the same process
recovers by itself, with no restart.
"""

from __future__ import annotations

import errno
import socket
import time

import asyncpg
import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from services.launcher import Server, migrate
from shared.errors import database_unreachable, install_error_handlers
from tests.ops.conftest import Launcher, PgCluster, bearer, make_events, token

pytestmark = pytest.mark.ops

TENANT = "t-outage"
RECOVERY_SECONDS = 15.0


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, f"{answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    assert int(answer.headers["retry-after"]) > 0
    problem = answer.json()
    assert problem["status"] == 503
    assert {"type", "title", "status", "detail"} <= set(problem)


def stored_count(cluster: PgCluster) -> int:
    engine = create_engine(cluster.url("attribution", driver="psycopg"))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT count(*) FROM events WHERE tenant_id = :t"), {"t": TENANT}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def wait_until(predicate: object, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout:.0f}s")


@pytest.mark.postgres
def test_service_rides_out_a_database_outage(pg_cluster: PgCluster, launcher: Launcher) -> None:
    with psycopg.connect(pg_cluster.url("postgres", driver="psycopg").replace("+psycopg", "")) as c:
        c.autocommit = True
        c.execute("CREATE DATABASE attribution")
    service: Server = launcher.service(
        "attribution", database_url=migrate("attribution", pg_cluster.url("attribution"))
    )
    service.start()
    service.wait_ready()
    writer = bearer(token(TENANT, "events:write", "reports:read"))
    batches = iter(range(100))

    def post(client: httpx.Client) -> httpx.Response:
        return client.post(
            "/v1/events",
            json={"events": make_events("outage", next(batches) * 10, 10)},
            headers=writer,
        )

    with httpx.Client(base_url=service.url, timeout=30.0) as client:
        # Warm the pool: these connections will all be dead after the stop.
        for _ in range(3):
            assert post(client).status_code == 200
        assert client.get("/v1/settings", headers=writer).status_code == 200
        assert stored_count(pg_cluster) == 30

        pg_cluster.stop("immediate")
        outage_started = time.monotonic()
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            assert_unavailable(client.get("/readyz"))
            assert_unavailable(post(client))
            assert_unavailable(client.get("/v1/settings", headers=writer))
        assert service.alive(), "the service died with its database"
        outage_answers = time.monotonic() - outage_started

        pg_cluster.start()

        def ready() -> bool:
            return client.get("/readyz").status_code == 200

        recovered_in = wait_until(ready, RECOVERY_SECONDS, "/readyz 200 after the restart")
        assert stored_count(pg_cluster) == 30, "acknowledged events lost in the outage"
        answer = post(client)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 10
        assert client.get("/v1/settings", headers=writer).status_code == 200
        assert service.alive()
        assert service.starts == 1, "the service was restarted"
    assert stored_count(pg_cluster) == 40
    print(
        f"\n[outage] 9 requests during the outage answered 503 in {outage_answers:.2f}s; "
        f"ready again {recovered_in:.2f}s after PostgreSQL restarted; same pid {service.pid}"
    )


# --- every way the driver says "unreachable" maps to 503 ------------------------------------


def _dbapi_error(orig: BaseException, *, invalidated: bool) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, orig, connection_invalidated=invalidated)


def _wrapping(cause: BaseException) -> Exception:
    """A DBAPI-level error raised from a driver error, as SQLAlchemy's asyncpg adapter does."""
    try:
        raise Exception("translated") from cause
    except Exception as exc:
        return exc


UNREACHABLE = {
    "refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    "reset": ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    "host-unreachable": OSError(errno.EHOSTUNREACH, "No route to host"),
    "timeout": TimeoutError(),
    "dns": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    "asyncpg-gone": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    "asyncpg-starting": asyncpg.exceptions.CannotConnectNowError("the database is starting up"),
    "asyncpg-shutdown": asyncpg.exceptions.AdminShutdownError("terminating connection"),
    "sa-invalidated": InterfaceError(
        "SELECT 1", {}, Exception("connection is closed"), connection_invalidated=True
    ),
    "sa-wrapping-asyncpg": _dbapi_error(
        _wrapping(asyncpg.exceptions.ConnectionDoesNotExistError("closed")), invalidated=False
    ),
    "sa-operational": OperationalError("SELECT 1", {}, Exception("database is locked")),
}
NOT_AN_OUTAGE = {
    "file-missing": FileNotFoundError(errno.ENOENT, "No such file"),
    "sa-integrity": IntegrityError("INSERT", {}, Exception("duplicate key")),
    "sa-dbapi": _dbapi_error(Exception("syntax error"), invalidated=False),
    "bug": RuntimeError("a bug"),
}


@pytest.fixture(scope="module")
def raising_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    errors = {**UNREACHABLE, **NOT_AN_OUTAGE}

    @app.get("/raise/{name}")
    async def raise_it(name: str) -> None:
        raise errors[name]

    return app


@pytest.mark.parametrize("name", sorted(UNREACHABLE))
async def test_unreachable_database_errors_answer_503(raising_app: FastAPI, name: str) -> None:
    transport = httpx.ASGITransport(app=raising_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(f"/raise/{name}")
    assert_unavailable(answer)
    assert database_unreachable(UNREACHABLE[name]) or name == "sa-operational"


@pytest.mark.parametrize("name", sorted(NOT_AN_OUTAGE))
async def test_other_errors_stay_500(raising_app: FastAPI, name: str) -> None:
    transport = httpx.ASGITransport(app=raising_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get(f"/raise/{name}")
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" not in answer.headers
    assert not database_unreachable(NOT_AN_OUTAGE[name])
