"""The FastAPI application factory both services build on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import make_engine, make_sessionmaker, reader
from shared.errors import install_error_handlers
from shared.health import health_router
from shared.limits import install_body_limit
from shared.metrics import metrics_router
from shared.migrate import MigrationSpec, head_revision
from shared.observability import ObservabilityMiddleware, configure_logging
from shared.openapi import install_problem_openapi
from shared.ratelimit import RateLimitMiddleware, TokenLimiter
from shared.revocation import RevokedTable, TokenVerifier, revoked_token_ids
from shared.schemas import ID_PATTERN
from shared.settings import ServiceSettings

Hook = Callable[[FastAPI], Awaitable[None]]


def build_app(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    migrations: MigrationSpec,
    revoked_tokens: RevokedTable,
    routers: Sequence[APIRouter],
    on_startup: Hook | None = None,
    on_shutdown: Hook | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    if configure_logs:
        configure_logging(settings.log_level, json=settings.log_json)

    limiter = None
    if settings.rate_limit_per_second > 0:
        limiter = TokenLimiter(
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            namespace=migrations.service,
            redis_url=settings.redis_url,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_sessionmaker = make_sessionmaker(engine, read_only=True)
        app.state.head_revision = head_revision(migrations)

        async def load_revoked() -> set[tuple[str, str]]:
            async with reader(engine).connect() as conn:
                return await revoked_token_ids(conn, revoked_tokens)

        app.state.token_verifier = TokenVerifier(settings.secret, load_revoked)
        try:
            if on_startup is not None:
                await on_startup(app)
            yield
        finally:
            if on_shutdown is not None:
                await on_shutdown(app)
            await engine.dispose()
            if limiter is not None:
                limiter.close()

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # Added innermost first: observability wraps the rate limit, which wraps the body limit.
    install_body_limit(app, settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, secret=settings.secret, limiter=limiter)
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(health_router(migrations.version_table))
    app.include_router(metrics_router())
    for router in routers:
        app.include_router(router)
    install_problem_openapi(app)
    return app


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; routers commit before answering (services only flush)."""
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for queries that only read (reports, funnels): never takes a write lock."""
    async with request.app.state.read_sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]

_Source = TypeVar("_Source")
#: How a service chooses where a read is answered, from the request and its read session
#: (kept in the app's state; see the funnel and path source dependencies).
SourceChooser = Callable[[Request, AsyncSession], _Source]

# A client-chosen id in the path (``/v1/orders/{order_id}``).
IdPath = Annotated[str, Path(pattern=ID_PATTERN, description="Client-chosen id")]
