"""RFC 9457 problem details for every error either service answers."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://clipfunnel.dev/problems/"

log = logging.getLogger("clipfunnel.errors")

# Connecting to the database fails with the driver's own exceptions, which SQLAlchemy does not
# wrap (it wraps only DBAPI errors raised once connected): asyncpg raises OSError
# (ConnectionRefusedError…), TimeoutError or these. All mean "the database is unreachable now".
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)
try:
    from asyncpg import exceptions as _apg

    _DRIVER_UNAVAILABLE: tuple[type[Exception], ...] = (
        _apg.PostgresConnectionError,  # includes ConnectionDoesNotExistError
        _apg.CannotConnectNowError,  # starting up / shutting down / in recovery
        _apg.AdminShutdownError,
        _apg.CrashShutdownError,
        _apg.TooManyConnectionsError,
    )
except ImportError:  # pragma: no cover - asyncpg is a dependency
    _DRIVER_UNAVAILABLE = ()


def database_unreachable(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it wraps, says the database cannot be reached right now."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror):
            return True
        if isinstance(current, OSError) and current.errno in _UNREACHABLE_ERRNOS:
            return True
        if _DRIVER_UNAVAILABLE and isinstance(current, _DRIVER_UNAVAILABLE):
            return True
        wrapped = current.orig if isinstance(current, DBAPIError) else None
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return False


class ProblemError(Exception):
    """Base of the errors services raise; each maps to one problem type."""

    status: int = 500
    type_slug: str = "internal"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def __init_subclass__(cls, *, problem: tuple[int, str, str] | None = None, **kw: Any) -> None:
        """``class X(ProblemError, problem=(status, type_slug, title))``: the problem type that
        X maps to, in one line (a subclass may also assign the three attributes itself)."""
        super().__init_subclass__(**kw)
        if problem is not None:
            cls.status, cls.type_slug, cls.title = problem


class BadRequest(ProblemError, problem=(400, "bad-request", "Bad request")): ...


class Unauthorized(ProblemError, problem=(401, "unauthorized", "Unauthorized")):
    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="clipfunnel"')


class Forbidden(ProblemError, problem=(403, "forbidden", "Forbidden")): ...


class NotFound(ProblemError, problem=(404, "not-found", "Not found")): ...


class Conflict(ProblemError, problem=(409, "conflict", "Conflict")): ...


class PayloadTooLarge(ProblemError, problem=(413, "payload-too-large", "Payload too large")): ...


class UnprocessableEntity(ProblemError, problem=(422, "validation-error", "Validation error")): ...


class TooManyRequests(ProblemError, problem=(429, "rate-limited", "Too many requests")): ...


class ServiceUnavailable(ProblemError, problem=(503, "unavailable", "Service unavailable")): ...


class RevocationListStale(ServiceUnavailable):
    type_slug, title = "revocation-list-stale", "Revoked tokens cannot be checked"


T = TypeVar("T")


def found(value: T | None, detail: str) -> T:
    """``value``, or a 404 saying ``detail`` (what is missing and how to create it) if None."""
    if value is None:
        raise NotFound(detail)
    return value


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_slug: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    instance: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (type_slug or _slug_for(status)),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return Response(
        content=orjson.dumps(body, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def problem_for(exc: ProblemError, instance: str | None = None) -> Response:
    """The problem+json answer of a ``ProblemError`` (raised, or built to answer directly)."""
    return problem_response(
        exc.status,
        exc.title,
        exc.detail,
        type_slug=exc.type_slug,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
        instance=instance,
    )


def _slug_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-")
    except ValueError:
        return "error"


def _loc_to_str(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for err in exc.errors():
        loc = list(err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field (not allowed)"
        elif err.get("type") == "json_invalid":
            msg = "malformed JSON: " + str(err.get("ctx", {}).get("error", msg))
        items.append(
            {"loc": loc, "field": _loc_to_str(loc[1:] if len(loc) > 1 else loc), "msg": msg}
        )
    return items


def validation_route(
    problem_for: Callable[[RequestValidationError], ProblemError | None],
) -> type[APIRoute]:
    """A route class whose request validation errors are answered by ``problem_for``.

    ``problem_for`` builds the problem to answer (e.g. one 422 naming each parameter and what
    it allows in ``detail`` too), or returns None to leave the error to the shared handler.
    """

    class ValidationRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route_handler(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    problem = problem_for(exc)
                    if problem is None:
                        raise
                    raise problem from None

            return route_handler

    return ValidationRoute


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem_for(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = validation_errors(exc)
        if any(e["msg"].startswith("malformed JSON") for e in errors):
            return problem_response(
                400,
                "Malformed JSON",
                "The request body is not valid JSON: " + errors[0]["msg"],
                type_slug="malformed-json",
                errors=errors,
                instance=request.url.path,
            )
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            "Validation error",
            f"The request has {len(errors)} invalid field(s): {fields}. See errors for each.",
            type_slug="validation-error",
            errors=errors,
            instance=request.url.path,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        elif exc.status_code == 405:
            detail = f"Method {request.method} is not allowed on {request.url.path}."
        return problem_response(
            exc.status_code,
            _title(exc.status_code),
            detail,
            headers=getattr(exc, "headers", None),
            instance=request.url.path,
        )

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> Response:
        log.warning("database unavailable: %s", type(exc).__name__)
        return database_unavailable(request, "The database did not answer; retry shortly.")

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> Response:
        if database_unreachable(exc):
            log.warning("database unavailable: %s", type(exc).__name__)
            return database_unavailable(request, "The database connection was lost; retry shortly.")
        log.exception("database error")
        return problem_response(
            500,
            "Internal error",
            "The request failed on a database error; it has been logged.",
            instance=request.url.path,
        )

    async def _driver_error(request: Request, exc: Exception) -> Response:
        """Errors raised while (re)connecting, which SQLAlchemy passes through unwrapped."""
        if not database_unreachable(exc):
            return await _unexpected(request, exc)
        log.warning("database unreachable: %s: %s", type(exc).__name__, exc)
        return database_unavailable(request, "The database cannot be reached; retry shortly.")

    driver_errors: tuple[type[Exception], ...] = (OSError, *_DRIVER_UNAVAILABLE)
    for driver_error in driver_errors:
        app.add_exception_handler(driver_error, _driver_error)

    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return internal_error(request.url.path)

    # Starlette answers a handler for Exception from its outermost middleware and then
    # re-raises, which makes the server drop the connection. The middleware below answers
    # instead, inside every other middleware; this handler stays for errors raised by those.
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(UnhandledErrorMiddleware)


def database_unavailable(request: Request, detail: str) -> Response:
    """A 503 that asks the client to retry in a few seconds."""
    return problem_response(
        503,
        "Database unavailable",
        detail,
        type_slug="database-unavailable",
        headers={"Retry-After": "5"},
        instance=request.url.path,
    )


def internal_error(path: str) -> Response:
    return problem_response(
        500,
        "Internal error",
        "The server failed to handle this request; the error has been logged. Retrying will "
        "not help unless the cause is fixed: report the time and the X-Request-ID header.",
        instance=path,
    )


class UnhandledErrorMiddleware:
    """Answers an exception no handler took with a 500 problem+json, without re-raising it, so
    the server keeps the (kept-alive) connection open. An exception after the response has
    started cannot be answered any more: that one propagates, and the server closes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or scope["type"] != "http":  # lifespan and websocket errors propagate
                raise
            path = str(scope.get("path", ""))
            log.error("unhandled error on %s %s", scope.get("method"), path, exc_info=exc)
            await internal_error(path)(scope, receive, send)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
