"""Liveness and readiness probes.

Readiness is: the database answers, its schema is at head, and every check a service puts in
``app.state.readiness_checks`` passes (each returns None when ready, else why not; e.g. the
attribution service's catalog sync that has stopped advancing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.db import reader
from shared.errors import problem_response

ReadinessCheck = Callable[[], str | None]


def _not_ready(detail: str) -> Response:
    return problem_response(
        503, "Not ready", detail, type_slug="not-ready", headers={"Retry-After": "5"}
    )


def health_router(version_table: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: 200 while the process lives")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database answers, migrations are at head and the service's "
        "own checks pass",
        responses={503: {"description": "Not ready (problem+json)"}},
        response_model=None,
    )
    async def readyz(request: Request) -> object:
        expected: str | None = request.app.state.head_revision
        try:
            async with reader(request.app.state.engine).connect() as conn:
                current = (
                    await conn.execute(text(f"SELECT version_num FROM {version_table}"))
                ).scalar_one_or_none()
        except Exception as exc:
            return _not_ready(f"The database did not answer ({type(exc).__name__}).")
        if current != expected:
            return _not_ready(
                f"Database schema is at {current!r}, expected {expected!r}: "
                "run `clipfunnel migrate`."
            )
        checks: Iterable[ReadinessCheck] = getattr(request.app.state, "readiness_checks", ())
        reasons = [reason for check in checks if (reason := check()) is not None]
        if reasons:
            return _not_ready(" ".join(reasons))
        return JSONResponse({"status": "ready", "revision": current})

    return router
