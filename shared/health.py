"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.db import reader
from shared.errors import problem_response


def health_router(version_table: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: 200 while the process lives")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the database answers and migrations are at head",
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
            return problem_response(
                503,
                "Not ready",
                f"The database did not answer ({type(exc).__name__}).",
                type_slug="not-ready",
                headers={"Retry-After": "5"},
            )
        if current != expected:
            return problem_response(
                503,
                "Not ready",
                f"Database schema is at {current!r}, expected {expected!r}: "
                "run `clipfunnel migrate`.",
                type_slug="not-ready",
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready", "revision": current})

    return router
