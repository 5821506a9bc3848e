from __future__ import annotations

import asyncio
import weakref
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.core.buffer import IngestBuffer, broker_errors, ingest_buffer
from services.attribution.orders import service
from services.attribution.orders.lifecycle import check_not_ahead, currency_error
from services.attribution.orders.schemas import (
    AttributionOut,
    OrderAnswer,
    OrderIn,
    OrderOut,
    RefundIn,
    RefundOut,
)
from services.attribution.orders.signature import HEADER, verify
from services.attribution.settings.service import Rules, load_rules
from shared.app import IdPath, SessionDep
from shared.auth import OrdersWriter, Principal, ReportsReader, current_principal, require_scope
from shared.bodies import parse_model
from shared.db import utcnow
from shared.errors import ProblemError, ServiceUnavailable
from shared.schemas import jsonable

router = APIRouter(prefix="/v1/orders", tags=["orders"])


ORDER_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON (problem+json)"},
    401: {"description": "Missing/invalid token, or missing/invalid signature (problem+json)"},
    403: {"description": "Token lacks orders:write"},
    409: {"description": "Same status with a different body, or an impossible transition"},
    413: {"description": "Body too large"},
    422: {"description": "Invalid order, or a currency other than the tenant's"},
}


def _body_schema(model: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _json(body: dict[str, Any], status_code: int) -> Response:
    return Response(
        orjson.dumps(body, default=jsonable, option=orjson.OPT_PASSTHROUGH_DATETIME),
        status_code=status_code,
        media_type="application/json",
    )


def _verify_signature(request: Request, rules: Rules, raw: bytes) -> None:
    """Refuse the raw body unless it is signed, when the tenant has a webhook secret."""
    if rules.webhook_secret:
        verify(
            rules.webhook_secret,
            request.headers.get(HEADER),
            raw,
            tolerance=request.app.state.settings.signature_tolerance_seconds,
        )


async def _signed_body(request: Request, rules: Rules) -> bytes:
    """The raw body, verified against the tenant's webhook secret when it has one."""
    raw = await request.body()  # size-limited (413) by the body limit middleware
    _verify_signature(request, rules, raw)
    return raw


@router.post(
    "",
    status_code=201,
    response_model=OrderAnswer,
    summary="Post an order status (idempotent on order_id + status)",
    description="201 the first time, 200 with the same answer on an identical replay. The "
    "answer carries the credits under the tenant's default model.",
    responses={200: {"description": "Identical replay", "model": OrderAnswer}, **ORDER_ERRORS},
    # The route resolves its bearer token itself (no dependency): declared here for the docs.
    openapi_extra={**_body_schema(OrderIn), "security": [{"HTTPBearer": []}]},
)
async def post_order(request: Request) -> Response:
    # The hot path: no FastAPI dependencies (the principal and the session are taken here),
    # and a post that creates an order goes to the driver (service.ingest_new_on_driver).
    principal = await _orders_writer(request)
    settings = request.app.state.settings
    raw = await request.body()  # size-limited (413) by the body limit middleware
    # Parse first so the tenant's rules and the order's state come in one statement; an
    # invalid body is still refused only after its signature has been checked.
    payload: OrderIn | None = None
    invalid: ProblemError | None = None
    try:
        payload = parse_model(OrderIn, raw)
    except ProblemError as exc:
        invalid = exc
    tenant_id = principal.tenant_id
    async with _slots(request), request.app.state.sessionmaker() as session:
        buffer = ingest_buffer(request)
        if buffer is not None:
            return await _buffered(request, buffer, tenant_id, session, raw, payload, invalid)
        if payload is not None and payload.status in service.CREATING and payload.user_id:

            def admit(rules: Rules) -> None:
                assert payload is not None
                _verify_signature(request, rules, raw)
                check_not_ahead(
                    payload.occurred_at,
                    now=utcnow(),
                    max_future_seconds=settings.max_future_seconds,
                )

            fast = await service.ingest_new_on_driver(
                session, tenant_id, settings.secret, payload, admit
            )
            if fast is not None:
                await session.commit()
                return _json(fast.body, fast.status_code)
        context = await service.order_context(session, tenant_id, settings.secret, payload)
        _verify_signature(request, context.rules, raw)
        if invalid is not None:
            raise invalid
        assert payload is not None
        check_not_ahead(
            payload.occurred_at, now=utcnow(), max_future_seconds=settings.max_future_seconds
        )
        answer = await service.ingest_order(session, tenant_id, payload, context)
        await session.commit()
        return _json(answer.body, answer.status_code)


#: Order posts in flight on the database at once, per process and event loop: on PostgreSQL
#: two fewer than the pool's connections (the pool opens and closes overflow connections on
#: demand, each a new session preparing its statements), on SQLite two (one writer at a time,
#: and the next one ready). Posts beyond these wait here, in arrival order, holding neither a
#: session nor a connection, so a burst queues instead of churning connections.
SQLITE_ORDER_SLOTS = 2


def _slots(request: Request) -> asyncio.Semaphore:
    state = request.app.state
    per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = (
        getattr(state, "order_slots", None)
    )
    if per_loop is None:
        per_loop = state.order_slots = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    slots = per_loop.get(loop)
    if slots is None:
        if state.sessionmaker.kw["bind"].dialect.name == "sqlite":
            limit = SQLITE_ORDER_SLOTS
        else:
            limit = max(1, state.settings.db_pool_size - 2)
        slots = per_loop[loop] = asyncio.Semaphore(limit)
    return slots


_bearer = HTTPBearer(auto_error=False)
_require_orders_write = require_scope("orders:write")


async def _orders_writer(request: Request) -> Principal:
    """What the ``OrdersWriter`` dependency resolves, without FastAPI's dependency solving."""
    return await _require_orders_write(await current_principal(request, await _bearer(request)))


async def _buffered(
    request: Request,
    buffer: IngestBuffer,
    tenant_id: str,
    session: AsyncSession,
    raw: bytes,
    payload: OrderIn | None,
    invalid: ProblemError | None,
) -> Response:
    """Buffer mode: every check that needs no order state, then the broker, then 202.

    The tenant's rules (webhook secret, currency) come from the database when it answers and
    from the last copy read otherwise, so an outage does not refuse signed orders; the
    order's own state (replays, transitions) is the writer's to judge.
    """
    settings = request.app.state.settings
    rules = await _rules_or_last_known(request, session, tenant_id)
    _verify_signature(request, rules, raw)
    if invalid is not None:
        raise invalid
    assert payload is not None
    check_not_ahead(
        payload.occurred_at, now=utcnow(), max_future_seconds=settings.max_future_seconds
    )
    if rules.currency is not None and rules.currency != payload.currency:
        raise currency_error(payload.currency, rules.currency)
    async with broker_errors():
        new = await buffer.publish_order(tenant_id, payload.order_id, payload.status, raw)
    answer = {"order_id": payload.order_id, "status": payload.status, "buffered": True}
    return _json({**answer, "duplicate": not new}, 202)


async def _rules_or_last_known(request: Request, session: AsyncSession, tenant_id: str) -> Rules:
    state = request.app.state
    known: dict[str, Rules] | None = getattr(state, "last_known_rules", None)
    if known is None:
        known = state.last_known_rules = {}
    try:
        rules = await load_rules(session, tenant_id, request.app.state.settings.secret)
    except Exception as exc:
        if tenant_id in known:
            return known[tenant_id]
        raise ServiceUnavailable(
            "The database is unreachable and this tenant's settings were never read by this "
            "process; retry shortly.",
            headers={"Retry-After": "2"},
        ) from exc
    known[tenant_id] = rules
    return rules


@router.post(
    "/{order_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    summary="Refund part or all of a paid order (idempotent on refund_id)",
    responses={
        200: {"description": "Identical replay", "model": RefundOut},
        404: {"description": "No such order"},
        **ORDER_ERRORS,
    },
    openapi_extra=_body_schema(RefundIn),
)
async def post_refund(
    order_id: IdPath, principal: OrdersWriter, session: SessionDep, request: Request
) -> Response:
    settings = request.app.state.settings
    rules = await load_rules(session, principal.tenant_id, settings.secret)
    raw = await _signed_body(request, rules)
    payload = parse_model(RefundIn, raw)
    check_not_ahead(
        payload.occurred_at, now=utcnow(), max_future_seconds=settings.max_future_seconds
    )
    answer = await service.post_refund(session, principal.tenant_id, order_id, payload, rules)
    await session.commit()
    return _json(answer.body, answer.status_code)


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="An order with its lines, refunds and current revenue",
    responses={404: {"description": "No such order in this tenant"}},
)
async def get_order(order_id: IdPath, principal: ReportsReader, session: SessionDep) -> OrderOut:
    return await service.get_order(session, principal.tenant_id, order_id)


@router.get(
    "/{order_id}/attribution",
    response_model=AttributionOut,
    summary="The order's credits under any attribution model",
    responses={404: {"description": "No such order"}, 422: {"description": "Unknown model"}},
)
async def get_order_attribution(
    order_id: IdPath,
    principal: ReportsReader,
    session: SessionDep,
    request: Request,
    model: Annotated[
        str | None,
        Query(
            description="last_touch, first_touch, linear, time_decay or position_based "
            "(default: the tenant's)"
        ),
    ] = None,
) -> AttributionOut:
    rules = await load_rules(
        session, principal.tenant_id, request.app.state.settings.secret, with_webhook_secret=False
    )
    chosen = service.check_model(model, rules)
    return await service.get_attribution(session, principal.tenant_id, order_id, chosen)
