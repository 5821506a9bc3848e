"""Request body size limit for every route of both services (``max_body_bytes``, 1 MiB).

This is the one place a body's size is limited: routes that read the raw body
(``await request.body()``) and those FastAPI parses are bounded alike. The limit is enforced
where the body is read, not before routing: the ASGI ``receive`` is wrapped so that the first
read of a body whose declared ``Content-Length`` is over the limit, or the read that takes an
undeclared (chunked) body over it, raises :class:`BodyTooLarge`. Nothing beyond the limit is
ever buffered, routes that read no body are unaffected, and the 413 is answered inside
routing, so metrics and the access log carry its route template and (for routes that
authenticate before reading, like ``POST /v1/events``) its tenant.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PayloadTooLarge, problem_for


class BodyTooLarge(HTTPException):
    """Raised from ``receive``. An ``HTTPException`` because FastAPI re-raises those while it
    parses a body (anything else would become a 400)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        if declared is not None:
            detail = (
                f"The body is {declared} bytes; at most {limit} are accepted per request. "
                "Split it into smaller requests."
            )
        else:
            detail = (
                f"The body exceeds {limit} bytes, the most accepted per request. "
                "Split it into smaller requests."
            )
        super().__init__(status_code=413, detail=detail)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared: int | None = None
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None  # the server refuses a malformed length itself
                break
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit, declared)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Add the middleware and answer its 413 as problem+json (type ``payload-too-large``)."""

    async def too_large(request: Request, exc: Exception) -> Response:
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return problem_for(PayloadTooLarge(detail), request.url.path)

    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_bytes)
