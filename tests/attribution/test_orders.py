"""Order ingest through the API: idempotency, transitions, refunds, signatures, concurrency."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import orjson
import pytest
from prometheus_client import REGISTRY

from services.attribution.orders.signature import HEADER, sign
from tests.attribution.order_setup import Shop, at, make_shop, order_body, touch
from tests.conftest import auth, new_tenant


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def test_paid_order_is_credited_to_the_last_click(shop: Shop) -> None:
    await shop.events(
        touch("view", at(hours=1)),
        touch("click", at(hours=2), product="p1", click_id="c1", event_id="clk-a"),
        touch("click", at(hours=3), product="p1", click_id="c2", event_id="clk-b"),
    )
    response = await shop.order()
    body = response.json()
    assert body["status"] == "paid"
    assert body["buyer_id"] == "u1"
    assert body["revenue"] == "100.00"
    assert body["currency"] == "CNY"
    assert [(c["event_id"], c["amount"], c["touch"]) for c in body["credits"]] == [
        ("clk-b", "100.00", "click")
    ]


async def test_identical_replay_answers_200_with_the_same_body(shop: Shop) -> None:
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    first = await shop.order()
    second = await shop.order(expect=200)
    assert second.json() == first.json()


async def test_same_status_with_a_different_body_is_409(shop: Shop) -> None:
    await shop.order()
    response = await shop.order(expect=409, items=[("p1", 2, "100.00")])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "different body" in response.json()["detail"]


async def test_created_then_paid_then_stale_created(shop: Shop) -> None:
    await shop.order(status="created", when=at(hours=3))
    paid = await shop.order(status="paid", when=at(hours=4))
    assert paid.json()["status"] == "paid"
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["status"] == "paid"
    assert detail["ordered_at"] == "2026-11-01T15:00:00Z"
    assert detail["paid_at"] == "2026-11-01T16:00:00Z"


async def test_paid_before_created_is_accepted_and_late_created_changes_nothing(
    shop: Shop,
) -> None:
    await shop.order(status="paid", when=at(hours=4))
    late = await shop.order(status="created", when=at(hours=3), order_id="o1")
    assert late.status_code == 201
    assert late.json()["status"] == "paid"
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["status"] == "paid"
    assert detail["revenue"] == "100.00"


@pytest.mark.parametrize(
    ("history", "wanted"),
    [
        ([], "cancelled"),
        ([], "refunded"),
        (["created"], "refunded"),
        (["created", "cancelled"], "paid"),
        (["paid", "refunded"], "cancelled"),
    ],
)
async def test_impossible_transitions_are_409(shop: Shop, history, wanted) -> None:
    for step, status in enumerate(history):
        await shop.order(status=status, when=at(hours=3 + step))
    response = await shop.order(expect=409, status=wanted, when=at(hours=9))
    assert "cannot become" in response.json()["detail"]


async def test_cancelling_a_paid_order_removes_its_credits(shop: Shop) -> None:
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    await shop.order()
    assert await shop.credits("o1")
    cancelled = await shop.order(status="cancelled", when=at(hours=5))
    assert cancelled.json()["revenue"] == "0.00"
    assert cancelled.json()["credits"] == []
    for model in ("last_touch", "linear", "time_decay"):
        assert await shop.credits("o1", model) == []
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["status"] == "cancelled"


async def test_partial_refund_by_amount_reduces_credits_proportionally(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=1), product="p1", click_id="c1", event_id="k1"),
        touch("click", at(hours=2), product="p1", click_id="c2", event_id="k2"),
    )
    await shop.order()
    assert [c["amount"] for c in await shop.credits("o1", "linear")] == ["50.00", "50.00"]
    response = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={"refund_id": "r1", "occurred_at": at(hours=6).isoformat(), "amount": "30.00"},
        headers=shop.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["order_revenue"] == "70.00"
    assert [c["amount"] for c in await shop.credits("o1", "linear")] == ["35.00", "35.00"]
    assert [c["amount"] for c in await shop.credits("o1", "last_touch")] == ["70.00"]


async def test_refund_by_items_takes_from_the_right_line(shop: Shop) -> None:
    await shop.events(
        touch("click", at(hours=1), content="v1", product="p1", click_id="c1", event_id="k1"),
        touch("click", at(hours=2), content="v2", product="p2", click_id="c2", event_id="k2"),
    )
    await shop.order(items=[("p1", 2, "100.00"), ("p2", 1, "50.00")])
    response = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={
            "refund_id": "r1",
            "occurred_at": at(hours=6).isoformat(),
            "items": [{"product_id": "p1", "quantity": 1}],
        },
        headers=shop.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == "100.00"
    credits = {c["event_id"]: c["amount"] for c in await shop.credits("o1")}
    assert credits == {"k1": "100.00", "k2": "50.00"}
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert [line["refunded_quantity"] for line in detail["lines"]] == [1, 0]
    assert detail["revenue"] == "150.00"
    assert len(detail["refunds"]) == 1


async def test_full_refund_leaves_zero(shop: Shop) -> None:
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    await shop.order()
    response = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={"refund_id": "r1", "occurred_at": at(hours=6).isoformat(), "amount": "100.00"},
        headers=shop.headers,
    )
    assert response.status_code == 201
    assert response.json()["order_status"] == "refunded"
    assert await shop.credits("o1") == []
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert (detail["status"], detail["revenue"], detail["refunded"]) == (
        "refunded",
        "0.00",
        "100.00",
    )


async def test_refunded_status_post_is_a_full_refund(shop: Shop) -> None:
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    await shop.order()
    response = await shop.order(status="refunded", when=at(hours=8))
    assert response.json()["revenue"] == "0.00"
    assert await shop.credits("o1") == []


async def test_refund_idempotency_and_errors(shop: Shop) -> None:
    await shop.order()
    body = {"refund_id": "r1", "occurred_at": at(hours=6).isoformat(), "amount": "10.00"}
    first = await shop.attribution.post("/v1/orders/o1/refunds", json=body, headers=shop.headers)
    replay = await shop.attribution.post("/v1/orders/o1/refunds", json=body, headers=shop.headers)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    changed = await shop.attribution.post(
        "/v1/orders/o1/refunds", json={**body, "amount": "11.00"}, headers=shop.headers
    )
    assert changed.status_code == 409
    too_much = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={**body, "refund_id": "r2", "amount": "95.00"},
        headers=shop.headers,
    )
    assert too_much.status_code == 422
    assert "only 90.00" in too_much.json()["detail"]
    unknown = await shop.attribution.post(
        "/v1/orders/nope/refunds", json={**body, "refund_id": "r3"}, headers=shop.headers
    )
    assert unknown.status_code == 404
    both = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={**body, "refund_id": "r4", "items": [{"product_id": "p1", "quantity": 1}]},
        headers=shop.headers,
    )
    assert both.status_code == 422
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["revenue"] == "90.00"


async def test_first_order_sets_the_currency_and_another_is_refused(shop: Shop) -> None:
    await shop.order(order_id="o1", currency="CNY")
    settings = (await shop.attribution.get("/v1/settings", headers=shop.headers)).json()
    assert settings["currency"] == "CNY"
    response = await shop.order(expect=422, order_id="o2", currency="USD")
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "USD" in response.json()["detail"]
    assert "CNY" in response.json()["detail"]
    missing = await shop.attribution.get("/v1/orders/o2", headers=shop.headers)
    assert missing.status_code == 404


async def test_order_validation_names_the_fields(shop: Shop) -> None:
    body = order_body(user=None)
    body["items"][0]["quantity"] = 0
    body["extra"] = 1
    response = await shop.attribution.post("/v1/orders", json=body, headers=shop.headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"items.0.quantity", "extra"} <= fields
    naive = order_body()
    naive["occurred_at"] = "2026-11-01T12:00:00"
    response = await shop.attribution.post("/v1/orders", json=naive, headers=shop.headers)
    assert response.status_code == 422
    garbage = await shop.attribution.post(
        "/v1/orders",
        content=b"{not json",
        headers={**shop.headers, "content-type": "application/json"},
    )
    assert garbage.status_code == 400
    assert garbage.headers["content-type"].startswith("application/problem+json")


async def _set_secret(shop: Shop, secret: str) -> None:
    response = await shop.attribution.put(
        "/v1/settings", json={"webhook_secret": secret}, headers=shop.headers
    )
    assert response.status_code == 200
    assert response.json()["webhook_secret_set"] is True
    assert response.json()["webhook_secret"] is None


async def test_signatures_missing_wrong_stale_and_correct(shop: Shop) -> None:
    secret = "whsec-0123456789abcdef"
    await _set_secret(shop, secret)
    raw = orjson.dumps(order_body())
    headers = {**shop.headers, "content-type": "application/json"}
    now = int(time.time())

    missing = await shop.attribution.post("/v1/orders", content=raw, headers=headers)
    wrong = await shop.attribution.post(
        "/v1/orders", content=raw, headers={**headers, HEADER: sign("not-the-secret-xx", raw, now)}
    )
    stale = await shop.attribution.post(
        "/v1/orders", content=raw, headers={**headers, HEADER: sign(secret, raw, now - 301)}
    )
    tampered = await shop.attribution.post(
        "/v1/orders", content=raw + b" ", headers={**headers, HEADER: sign(secret, raw, now)}
    )
    for response in (missing, wrong, stale, tampered):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert "more than 300 seconds" in stale.json()["detail"]
    good = await shop.attribution.post(
        "/v1/orders", content=raw, headers={**headers, HEADER: sign(secret, raw, now)}
    )
    assert good.status_code == 201, good.text
    # Clearing the secret lets unsigned posts through again.
    cleared = await shop.attribution.put(
        "/v1/settings", json={"webhook_secret": None}, headers=shop.headers
    )
    assert cleared.json()["webhook_secret_set"] is False
    unsigned = await shop.attribution.post(
        "/v1/orders", content=orjson.dumps(order_body(order_id="o2")), headers=headers
    )
    assert unsigned.status_code == 201


async def test_refunds_must_be_signed_too(shop: Shop) -> None:
    await shop.order()
    await _set_secret(shop, "whsec-0123456789abcdef")
    response = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={"refund_id": "r1", "occurred_at": at(hours=6).isoformat(), "amount": "1.00"},
        headers=shop.headers,
    )
    assert response.status_code == 401


async def test_one_order_posted_concurrently_is_created_once(shop: Shop, attribution_app) -> None:
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    responses = await asyncio.gather(*(shop.order(expect=None) for _ in range(6)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 200, 200, 201]
    bodies = {orjson.dumps(r.json(), option=orjson.OPT_SORT_KEYS) for r in responses}
    assert len(bodies) == 1
    from sqlalchemy import func, select

    from services.attribution.models import Credit, Order

    async with attribution_app.state.sessionmaker() as session:
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.tenant_id == shop.tenant)
        )
        credits = await session.scalar(
            select(func.count())
            .select_from(Credit)
            .where(Credit.tenant_id == shop.tenant, Credit.model == "last_touch")
        )
    assert (orders, credits) == (1, 1)


async def test_another_tenant_cannot_read_or_refund_an_order(shop: Shop, make_token) -> None:
    await shop.order()
    other = new_tenant()
    headers = auth(make_token(other, "admin"))
    for path in ("/v1/orders/o1", "/v1/orders/o1/attribution"):
        response = await shop.attribution.get(path, headers=headers)
        assert response.status_code == 404
    refund = await shop.attribution.post(
        "/v1/orders/o1/refunds",
        json={"refund_id": "r1", "occurred_at": at(hours=6).isoformat(), "amount": "1.00"},
        headers=headers,
    )
    assert refund.status_code == 404
    # The same order id in the other tenant is a different order.
    response = await shop.attribution.post(
        "/v1/orders", json=order_body(items=[("p9", 1, "1.00")]), headers=headers
    )
    assert response.status_code == 201
    mine = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert mine["revenue"] == "100.00"


async def test_order_routes_need_the_right_scope(shop: Shop, make_token) -> None:
    body = order_body()
    assert (await shop.attribution.post("/v1/orders", json=body)).status_code == 401
    reader = auth(make_token(shop.tenant, "reports:read"))
    assert (await shop.attribution.post("/v1/orders", json=body, headers=reader)).status_code == 403
    writer = auth(make_token(shop.tenant, "orders:write"))
    assert (await shop.attribution.get("/v1/orders/o1", headers=writer)).status_code == 403


async def test_order_metrics_count_outcomes(shop: Shop) -> None:
    def sample(status: str, outcome: str) -> float:
        value = REGISTRY.get_sample_value(
            "clipfunnel_orders_received_total", {"status": status, "outcome": outcome}
        )
        return value or 0.0

    def attributions() -> float:
        return REGISTRY.get_sample_value("clipfunnel_attribution_seconds_count") or 0.0

    before = (sample("paid", "accepted"), sample("paid", "duplicate"), attributions())
    await shop.events(touch("click", at(hours=1), product="p1", click_id="c1"))
    await shop.order()
    await shop.order(expect=200)
    after = (sample("paid", "accepted"), sample("paid", "duplicate"), attributions())
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == 1
    assert after[2] - before[2] >= 1


async def test_order_detail_lists_lines_and_money_exactly(shop: Shop) -> None:
    await shop.order(items=[("p1", 3, "33.33"), ("p2", 1, "0.01")])
    detail = (await shop.attribution.get("/v1/orders/o1", headers=shop.headers)).json()
    assert detail["gross_revenue"] == "100.00"
    assert [Decimal(line["revenue"]) for line in detail["lines"]] == [
        Decimal("99.99"),
        Decimal("0.01"),
    ]
