"""Shop connections, and one webhook delivery from its signature to the order it moves."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.attribution.core.metrics import SHOP_WEBHOOKS
from services.attribution.integrations import mapping, repository, signature
from services.attribution.integrations.schemas import (
    DeliveryOut,
    IntegrationIn,
    IntegrationOut,
    UnmatchedProduct,
    WebhookAnswer,
)
from services.attribution.models import Integration, IntegrationDelivery
from services.attribution.orders.service import ingest_order, order_context, post_refund
from services.attribution.settings.service import load_rules
from shared.crypto import decrypt_secret, encrypt_secret
from shared.db import assign, utcnow
from shared.errors import Conflict, NotFound, ProblemError, Unauthorized, UnprocessableEntity, found
from shared.pagination import Page, PageParams, decode_cursor, encode_cursor
from shared.schemas import from_row

# Shopify keeps signing with the replaced secret for up to an hour after a rotation.
ROTATION_GRACE = dt.timedelta(hours=1)
RETENTION = dt.timedelta(days=30)
# Never kept with a delivery: credentials the shop has no business sending us.
_DROPPED_HEADERS = {"authorization", "cookie"}


# --------------------------------------------------------------------------- connections


def to_out(row: Integration) -> IntegrationOut:
    return from_row(
        IntegrationOut,
        row,
        secret_set=bool(row.secret_encrypted),
        webhook_path=f"/v1/integrations/{row.integration_id}/webhooks",
    )


async def put_integration(
    session: AsyncSession, tenant_id: str, integration_id: str, body: IntegrationIn, secret: str
) -> tuple[bool, IntegrationOut]:
    """Create or replace a connection; True when it was created."""
    existing = await repository.by_id(session, integration_id)
    if existing is not None and existing.tenant_id != tenant_id:
        raise Conflict(
            f"Integration id {integration_id!r} is taken (ids are global: the webhook URL "
            "carries no tenant); choose another id."
        )
    now = utcnow()
    if existing is None:
        row = Integration(
            tenant_id=tenant_id,
            integration_id=integration_id,
            platform=body.platform,
            shop=body.shop,
            currency=body.currency,
            secret_encrypted=encrypt_secret(secret, body.secret),
            created_at=now,
            updated_at=now,
        )
        await repository.add(session, row)
        return True, to_out(row)
    if decrypt_secret(secret, existing.secret_encrypted) != body.secret:
        existing.previous_secret_encrypted = existing.secret_encrypted
        existing.secret_rotated_at = now
        existing.secret_encrypted = encrypt_secret(secret, body.secret)
    assign(existing, body.model_dump(include={"platform", "shop", "currency"}))
    existing.updated_at = now
    await session.flush()
    return False, to_out(existing)


async def get_integration(
    session: AsyncSession, tenant_id: str, integration_id: str
) -> Integration:
    return found(
        await repository.get(session, tenant_id, integration_id),
        f"No integration {integration_id!r} in this tenant; create it with "
        f"PUT /v1/integrations/{integration_id}.",
    )


async def list_integrations(session: AsyncSession, tenant_id: str) -> list[IntegrationOut]:
    return [to_out(row) for row in await repository.list_of(session, tenant_id)]


def delivery_view(row: IntegrationDelivery) -> DeliveryOut:
    return from_row(DeliveryOut, row, body=row.body.decode("utf-8", errors="replace"))


async def list_deliveries(
    session: AsyncSession, tenant_id: str, integration_id: str, page: PageParams
) -> Page[DeliveryOut]:
    """One page of the last 30 days' deliveries, newest first (keyset on received_at, key)."""
    await get_integration(session, tenant_id, integration_id)
    before = None
    if page.cursor is not None:
        key = decode_cursor(page.cursor)
        try:
            before = (dt.datetime.fromisoformat(key[0]), str(key[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise UnprocessableEntity(
                "The cursor is not valid; pass back the `next_cursor` of a previous page "
                "unchanged.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
            ) from None
    rows = await repository.deliveries(
        session, tenant_id, integration_id, utcnow() - RETENTION, page.limit + 1, before
    )
    last = rows[page.limit - 1] if len(rows) > page.limit else None
    return Page[DeliveryOut](
        items=[delivery_view(row) for row in rows[: page.limit]],
        next_cursor=None
        if last is None
        else encode_cursor([last.received_at.isoformat(), last.delivery_key]),
    )


async def unmatched_products(
    session: AsyncSession, tenant_id: str, integration_id: str
) -> list[UnmatchedProduct]:
    await get_integration(session, tenant_id, integration_id)
    rows = await repository.unmatched_products(session, tenant_id, integration_id)
    return [
        UnmatchedProduct(product_id=r.product_id, lines=int(r.lines), quantity=int(r.quantity))
        for r in rows
    ]


# --------------------------------------------------------------------------- deliveries


def _secrets(row: Integration, secret: str, now: dt.datetime) -> list[str]:
    secrets = [decrypt_secret(secret, row.secret_encrypted)]
    if (
        row.previous_secret_encrypted
        and row.secret_rotated_at is not None
        and now - row.secret_rotated_at <= ROTATION_GRACE
    ):
        secrets.append(decrypt_secret(secret, row.previous_secret_encrypted))
    return secrets


def verify(row: Integration, headers: dict[str, str], raw: bytes, secrets: list[str]) -> bool:
    if row.platform == "shopify":
        return signature.shopify_valid(raw, headers.get("x-shopify-hmac-sha256"), secrets)
    return signature.woocommerce_valid(raw, headers.get("x-wc-webhook-signature"), secrets)


def topic_of(row: Integration, headers: dict[str, str]) -> str:
    name = "x-shopify-topic" if row.platform == "shopify" else "x-wc-webhook-topic"
    return headers.get(name, "")


def delivery_key(
    row: Integration, headers: dict[str, str], topic: str, body: Any, raw: bytes
) -> str:
    """Shopify: its webhook id. WooCommerce: (source, order id, date_modified_gmt, topic),
    because its delivery id is a hash of the webhook id and the current second."""
    if row.platform == "shopify" and headers.get("x-shopify-webhook-id"):
        return "shopify:" + headers["x-shopify-webhook-id"][:200]
    if row.platform == "woocommerce" and isinstance(body, dict) and "id" in body:
        source = headers.get("x-wc-webhook-source", "")
        natural = f"{source}|{body.get('id')}|{body.get('date_modified_gmt')}|{topic}"
        return "woo:" + hashlib.sha256(natural.encode()).hexdigest()
    return "body:" + hashlib.sha256(topic.encode() + b"\x00" + raw).hexdigest()


@dataclass(frozen=True)
class Received:
    status_code: int
    answer: WebhookAnswer


async def receive(
    session: AsyncSession, integration_id: str, headers: dict[str, str], raw: bytes, secret: str
) -> Received:
    """Verify the raw body, keep the delivery, and apply it; refusals store nothing."""
    row = found(
        await repository.by_id(session, integration_id),
        f"No integration {integration_id!r}; check the webhook URL configured in the shop.",
    )
    label = row.integration_id
    if row.platform == "woocommerce" and signature.is_woocommerce_ping(
        raw, headers.get("x-wc-webhook-signature")
    ):
        SHOP_WEBHOOKS.labels(label, "ping").inc()
        return Received(200, WebhookAnswer(outcome="ping"))
    now = utcnow()
    if not verify(row, headers, raw, _secrets(row, secret, now)):
        SHOP_WEBHOOKS.labels(label, "unauthorized").inc()
        raise Unauthorized(
            "The webhook signature is missing or does not match this integration's secret. "
            "Check that the secret set with PUT /v1/integrations/"
            f"{integration_id} is the one the shop signs with, and that nothing re-encodes "
            "the body on the way.",
            headers={"WWW-Authenticate": "HMAC-SHA256"},
        )
    topic = topic_of(row, headers)
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    key = delivery_key(row, headers, topic, body, raw)
    await repository.prune(session, row.tenant_id, row.integration_id, now - RETENTION)
    kept = {k: v for k, v in headers.items() if k not in _DROPPED_HEADERS}
    claimed = await repository.claim_delivery(
        session,
        {
            "tenant_id": row.tenant_id,
            "integration_id": row.integration_id,
            "delivery_key": key,
            "topic": topic[:64],
            "order_id": None,
            "outcome": "pending",
            "reason": None,
            "headers": kept,
            "body": raw,
            "received_at": now,
        },
    )
    if not claimed:
        SHOP_WEBHOOKS.labels(label, "duplicate").inc()
        return Received(200, WebhookAnswer(outcome="duplicate"))
    outcome, order_id, reason = await _process(session, row, topic, body, secret)
    await repository.set_outcome(
        session, row.tenant_id, row.integration_id, key, outcome, reason, order_id
    )
    if outcome in ("applied", "replayed") and order_id is not None:
        await _retry_pending(session, row, order_id, key, secret)
    SHOP_WEBHOOKS.labels(label, outcome).inc()
    return Received(200, WebhookAnswer(outcome=outcome, order_id=order_id, reason=reason))


async def _retry_pending(
    session: AsyncSession, row: Integration, order_id: str, current_key: str, secret: str
) -> None:
    """Deliveries that arrived before their order (a refund, a cancellation) apply now."""
    for pending in await repository.pending_of(
        session, row.tenant_id, row.integration_id, order_id
    ):
        if pending.delivery_key == current_key:
            continue
        body = orjson.loads(pending.body)
        outcome, found, reason = await _process(session, row, pending.topic, body, secret)
        await repository.set_outcome(
            session, row.tenant_id, row.integration_id, pending.delivery_key, outcome, reason, found
        )


async def product_resolver(session: AsyncSession, tenant_id: str) -> mapping.Resolver:
    """A shop line → the catalog product whose ``external_ids`` name its variant, else its
    product, else its SKU (the first product by id when several do); else the shop's id."""
    index: dict[tuple[str, str], str] = {}
    for product_id, ids in await repository.external_ids(session, tenant_id):
        if isinstance(ids, dict):
            for kind, value in ids.items():
                index.setdefault((str(kind), str(value)), product_id)

    def resolve(product: mapping.ShopProduct) -> str | None:
        for key in product.match_keys():
            if key in index:
                return index[key]
        return product.shop_id()

    return resolve


async def _process(
    session: AsyncSession, row: Integration, topic: str, body: Any, secret: str
) -> tuple[str, str | None, str | None]:
    """(outcome, order id, reason) of one verified body."""
    if not isinstance(body, dict):
        return "failed", None, "the body is not a JSON object"
    resolve = await product_resolver(session, row.tenant_id)
    try:
        mapper = mapping.shopify if row.platform == "shopify" else mapping.woocommerce
        mapped = mapper(mapping.Delivery(row.integration_id, topic, body, row.currency), resolve)
    except mapping.MappingError as exc:
        return "failed", None, str(exc)
    if mapped.ignored is not None:
        return "ignored", mapped.order_id, mapped.ignored
    outcomes: list[str] = []
    reasons: list[str] = []
    tenant_id = row.tenant_id
    if mapped.order is not None:
        order = mapped.order
        context = await order_context(session, tenant_id, secret, order)
        if order.status == "cancelled" and context.order_status is None:
            # Applied when the order itself arrives, so a late `paid` cannot resurrect it.
            return "pending", mapped.order_id, "the order is not known yet"
        try:
            async with session.begin_nested():
                answer = await ingest_order(session, tenant_id, order, context)
            outcomes.append("applied" if answer.status_code == 201 else "replayed")
        except Conflict as exc:
            # A stale or out-of-order status (e.g. `paid` after `cancelled`) changes nothing.
            outcomes.append("ignored")
            reasons.append(exc.detail)
        except ProblemError as exc:
            return "failed", mapped.order_id, exc.detail
    if mapped.refunds:
        rules = await load_rules(session, tenant_id, secret, with_webhook_secret=False)
        for refund in mapped.refunds:
            assert mapped.order_id is not None
            try:
                async with session.begin_nested():
                    reply = await post_refund(session, tenant_id, mapped.order_id, refund, rules)
                outcomes.append("applied" if reply.status_code == 201 else "replayed")
            except NotFound:
                outcomes.append("pending")
                reasons.append(f"refund {refund.refund_id}: the order is not known yet")
            except Conflict as exc:
                outcomes.append("ignored")
                reasons.append(f"refund {refund.refund_id}: {exc.detail}")
            except ProblemError as exc:
                outcomes.append("failed")
                reasons.append(f"refund {refund.refund_id}: {exc.detail}")
    for outcome in ("pending", "failed", "applied", "replayed", "ignored"):
        if outcome in outcomes:
            return outcome, mapped.order_id, "; ".join(reasons) or None
    return "ignored", mapped.order_id, "nothing to apply"
