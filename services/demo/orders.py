"""Orders: what a viewer buys after a click or a view, and what happens to it afterwards.

An order holds the product that led to it, sometimes a second one from the same content, and
one unit more now and then. Most buyers are known by their viewer id and the click id the shop
forwarded; a share by the click id alone (the attribution service stitches them). A few orders
are cancelled, some are refunded: one line, part of the amount, or in full.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from services.demo.ids import Ids
from services.demo.timeline import CURRENCY, SECOND
from services.demo.wire import iso, money
from services.demo.world import World

SECOND_ITEM_RATE = 0.15
EXTRA_UNIT_RATE = 0.2
CLICK_IDS_ONLY_RATE = 0.1  # orders that carry only click_ids (the buyer is stitched)
CANCEL_RATE = 0.03
PARTIAL_REFUND_RATE = 0.08

Status = Literal["created", "paid", "cancelled"]


@dataclass(frozen=True, slots=True)
class Item:
    product_id: str
    quantity: int
    unit_price: Decimal

    @property
    def revenue(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True, slots=True)
class Refund:
    at_us: int
    items: tuple[tuple[str, int], ...] | None  # (product_id, quantity), or None for an amount
    amount: Decimal | None
    full: bool


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    user_id: str | None
    click_ids: tuple[str, ...]
    items: tuple[Item, ...]
    paid_us: int
    via: Literal["click", "view"]
    source_event_id: str  # the click or the view that led to it: it precedes the order
    created_us: int | None = None  # a shop that reports checkout before payment
    cancelled_us: int | None = None
    refund: Refund | None = None

    @property
    def revenue(self) -> Decimal:
        return sum((item.revenue for item in self.items), Decimal(0))

    def body(self, status: Status = "paid") -> dict[str, Any]:
        at = {"created": self.created_us, "paid": self.paid_us, "cancelled": self.cancelled_us}
        occurred = at[status]
        assert occurred is not None, f"order {self.order_id} was never {status}"
        body: dict[str, Any] = {
            "order_id": self.order_id,
            "status": status,
            "occurred_at": iso(occurred),
            "currency": CURRENCY,
            "items": [
                {
                    "product_id": i.product_id,
                    "quantity": i.quantity,
                    "unit_price": money(i.unit_price),
                }
                for i in self.items
            ],
        }
        if self.user_id is not None:
            body["user_id"] = self.user_id
        if self.click_ids:
            body["click_ids"] = list(self.click_ids)
        return body

    def status_bodies(self) -> list[dict[str, Any]]:
        """The status posts in the order a shop backend sends them."""
        statuses: list[Status] = ["created"] if self.created_us is not None else []
        statuses.append("paid")
        if self.cancelled_us is not None:
            statuses.append("cancelled")
        return [self.body(status) for status in statuses]

    def refund_body(self) -> dict[str, Any]:
        refund = self.refund
        assert refund is not None, f"order {self.order_id} has no refund"
        body: dict[str, Any] = {
            "refund_id": f"rf-{self.order_id}",
            "occurred_at": iso(refund.at_us),
        }
        if refund.items is not None:
            body["items"] = [{"product_id": p, "quantity": q} for p, q in refund.items]
        else:
            assert refund.amount is not None
            body["amount"] = money(refund.amount)
        return body


@dataclass
class Desk:
    """Takes the month's orders. ``checkout_s``: seconds from checkout to payment (None: the
    shop reports paid orders only); ``end_us``: nothing at or after it happens (None: no end)."""

    rng: random.Random
    ids: Ids
    world: World
    full_refund_rate: float
    checkout_s: tuple[int, int] | None
    end_us: int | None
    orders: list[Order]
    count: int = 0

    def take(
        self,
        user: str,
        at_us: int,
        product: str,
        content_id: str,
        click_id: str | None,
        source_event_id: str | None,
    ) -> None:
        """An order ``user`` places at ``at_us`` after the event ``source_event_id`` (None: that
        event fell outside the month, and so does the order)."""
        if source_event_id is None:
            return
        r, price = self.rng, self.world.price
        created_us: int | None = None
        if self.checkout_s is not None:
            created_us, at_us = at_us, at_us + r.randrange(*self.checkout_s) * SECOND
        items = [Item(product, 1 + int(r.random() < EXTRA_UNIT_RATE), price[product])]
        if r.random() < SECOND_ITEM_RATE:
            other = r.choice(self.world.products_of(content_id))
            if other != product:
                items.append(Item(other, 1, price[other]))
        self.count += 1
        only_clicks = click_id is not None and r.random() < CLICK_IDS_ONLY_RATE
        order_id = self.ids.order(self.count)
        cancelled_us: int | None = None
        refund: Refund | None = None
        roll = r.random()
        if roll < CANCEL_RATE:
            cancelled_us = at_us + r.randrange(60, 86_400) * SECOND
        elif roll < CANCEL_RATE + PARTIAL_REFUND_RATE + self.full_refund_rate:
            refund_us = at_us + r.randrange(3_600, 5 * 86_400) * SECOND
            if roll >= CANCEL_RATE + PARTIAL_REFUND_RATE:
                full = tuple((i.product_id, i.quantity) for i in items)
                refund = Refund(refund_us, full, None, full=True)
            elif len(items) > 1 or r.random() < 0.5:
                refund = Refund(refund_us, ((items[0].product_id, 1),), None, full=False)
            else:
                refund = Refund(refund_us, None, items[0].revenue / 2, full=False)
        if self.end_us is not None:
            if at_us >= self.end_us:
                return
            if cancelled_us is not None and cancelled_us >= self.end_us:
                cancelled_us = None
            if refund is not None and refund.at_us >= self.end_us:
                refund = None
        self.orders.append(
            Order(
                order_id=order_id,
                user_id=None if only_clicks else user,
                click_ids=(click_id,) if click_id is not None else (),
                items=tuple(items),
                paid_us=at_us,
                via="click" if click_id is not None else "view",
                source_event_id=source_event_id,
                created_us=created_us,
                cancelled_us=cancelled_us,
                refund=refund,
            )
        )
