"""Structured logging and the ASGI middleware that times, counts and logs every request."""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED_ROUTE

REQUEST_ID_HEADER = b"x-request-id"
_access_log = structlog.get_logger("clipfunnel.access")


_QUIET_LOGGERS = ("aiosqlite", "asyncpg", "psycopg", "sqlalchemy", "httpcore", "hpack", "multipart")


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """JSON lines on stderr; the stdlib loggers (uvicorn, sqlalchemy) go through the same pipe."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared_processors,
            render_exception,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        # Every line, ours or a library's, passes render_exception and redact last.
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            render_exception,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes the access log; uvicorn's would repeat it without tenant or route.
    logging.getLogger("uvicorn.access").disabled = True
    # Drivers' debug lines carry statements with their bound values (aiosqlite logs every
    # call with its parameters) or raw protocol data: never below WARNING, whatever the level.
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# --- keeping credentials, secrets and request bodies out of the logs ---------------------------
#
# Log lines are built from route templates, ids, counts and exception types, never from
# headers or bodies. As a backstop against an exception message that quotes data (a driver
# error with bound parameters, a validation error with its input), every line passes
# ``render_exception`` (tracebacks with data-free messages) and then ``redact`` (credentials
# by shape, and any field whose name says it holds one).

REDACTED = "[REDACTED]"
_SENSITIVE_KEY = re.compile(
    r"(secret|passw(or)?d|token|authorization|cookie|signature|api[_-]?key|body|payload)$",
    re.IGNORECASE,
)
_SCRUBBERS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Bearer tokens anywhere: JWTs (a JSON header and payload start "eyJ" in base64url), and
    # the cf1.<payload>.<signature> tokens of earlier versions, which clients may still send.
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"cf1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "cf1." + REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    # Order signatures (X-ClipFunnel-Signature: t=…,v1=<hex>).
    (re.compile(r"\bv1=[0-9A-Fa-f]{16,}"), "v1=" + REDACTED),
    # key=value / "key": "value" pairs whose key names a credential.
    (
        re.compile(
            r"""(?i)(["']?[\w-]*(?:secret|passw(?:or)?d|token|authorization|cookie|signature"""
            r"""|api[_-]?key)["']?\s*[:=]\s*)(\[REDACTED\]|"[^"]*"|'[^']*'|[^\s,;&}\]]+)"""
        ),
        r"\1" + REDACTED,
    ),
    # SQLAlchemy's statement errors append the bound values.
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: " + REDACTED + "]"),
    # pydantic's validation messages quote the input.
    (re.compile(r"input_value=[^\n]*?, input_type="), f"input_value={REDACTED}, input_type="),
    (re.compile(r"""(['"]input['"]\s*:\s*)[^\n]*"""), r"\1" + REDACTED),
)
_MAX_MESSAGE = 2000


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and _SENSITIVE_KEY.search(k) and v not in (None, "", True, False)
            else _redacted(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(v, depth + 1) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Structlog processor: scrub every string, blank every credential-named field."""
    for key in list(event_dict):
        value = event_dict[key]
        if key in ("event", "exception"):
            event_dict[key] = _redacted(value)
        elif _SENSITIVE_KEY.search(key) and value not in (None, "", True, False):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redacted(value)
    return event_dict


_QUOTED = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_DRIVER_MODULES = ("asyncpg", "psycopg", "psycopg2", "sqlite3", "aiosqlite", "sqlalchemy.dialects")


def _without_literals(text: str) -> str:
    # Database messages quote values ('invalid input syntax for type integer: "…"').
    return _QUOTED.sub(lambda m: m.group(0)[0] * 2, text)


def _database_message(exc: BaseException) -> str:
    """A driver error: its first line without quoted values (the DETAIL lines, which carry
    row values, are dropped), with the SQLSTATE and constraint when the driver gives them."""
    text = str(exc).strip()
    first_line = _without_literals(text.splitlines()[0]) if text else ""
    parts = [first_line]
    for source in (exc, exc.__cause__):
        code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(code, str):
            parts.append(f"(sqlstate {code})")
            break
    diag = getattr(exc, "diag", None)
    constraint = getattr(exc, "constraint_name", None) or getattr(diag, "constraint_name", None)
    if isinstance(constraint, str):
        parts.append(f"(constraint {constraint})")
    return scrub(" ".join(p for p in parts if p))


def _exception_message(exc: BaseException) -> str:
    """An exception's message with the data it may quote left out."""
    from sqlalchemy.exc import StatementError

    if isinstance(exc, StatementError):
        orig = exc.orig
        statement = _without_literals(" ".join((exc.statement or "").split()))[:500]
        driver = f"{type(orig).__name__}: {_database_message(orig)} " if orig is not None else ""
        return f"{driver}[SQL: {statement}] [parameters hidden]"
    if type(exc).__module__.startswith(_DRIVER_MODULES):
        return _database_message(exc)
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = list(errors())
        except Exception:
            items = []
        if items and all(isinstance(i, dict) for i in items):
            where = "; ".join(
                f"{'.'.join(str(p) for p in i.get('loc', ()))}: {i.get('type', 'invalid')}"
                for i in items[:10]
            )
            return f"{len(items)} validation error(s) (inputs hidden): {where}"
    return scrub(str(exc))[:_MAX_MESSAGE]


def format_exception(exc: BaseException) -> str:
    """Like ``traceback.format_exception`` (causes first), with data-free messages."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8 and all(current is not c for c in chain):
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    blocks = []
    for item in reversed(chain):
        frames = "".join(traceback.format_tb(item.__traceback__)) if item.__traceback__ else ""
        name = type(item).__qualname__
        module = type(item).__module__
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        message = _exception_message(item)
        blocks.append(f"Traceback (most recent call last):\n{frames}{name}: {message}")
    return "\n\nThe above led to:\n\n".join(blocks)


def render_exception(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor replacing ``exc_info`` by a redacted ``exception`` text."""
    exc_info = event_dict.pop("exc_info", None)
    exc: BaseException | None = None
    if isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        exc = exc_info[1]
    elif exc_info:
        exc = sys.exc_info()[1]
    if exc is not None:
        event_dict["exception"] = format_exception(exc)
    return event_dict


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Request id, RED metrics labelled by route template (never the raw path), access log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for key, value in scope.get("headers", ()):
            if key == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")[:64]
                break
        if not request_id:
            request_id = uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            method = scope.get("method", "")
            route = route_template(scope)
            status = status_holder[0]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(elapsed)
            state = scope.get("state") or {}
            if route not in ("/metrics", "/healthz"):
                _access_log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    tenant=state.get("tenant_id"),
                )
