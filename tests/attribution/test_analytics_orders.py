"""Replication of orders to the analytic store: the outbox, versions, crash safety.

Run on chdb (the embedded ClickHouse), with SQLite and PostgreSQL as the system of record.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.attribution.analytics import store
from services.attribution.analytics.replication import EventReplicator
from services.attribution.analytics.wiring import start_replication, stop_replication
from services.attribution.models import AnalyticsOrderChange
from tests.attribution.order_setup import Shop, at, make_shop, touch
from tests.conftest import TokenFactory, auth, new_tenant


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


def replicator(app: FastAPI) -> EventReplicator:
    found: EventReplicator = app.state.analytics
    return found


def analytic_orders(app: FastAPI, tenant: str) -> list[dict[str, Any]]:
    """The tenant's orders in ClickHouse as a funnel reads them (FINAL), by order id."""
    columns = ("order_id", "buyer_id", "status", "visible", "products", "contents", "ads")
    rows = replicator(app).store.rows(
        f"SELECT {', '.join(columns)}, toString(paid_at) FROM {{db}}.orders FINAL"
        f" WHERE tenant_id = {store.quote(tenant)} ORDER BY order_id"
    )
    return [{**dict(zip(columns, row, strict=False)), "paid_at": row[-1]} for row in rows]


def finals(app: FastAPI, tenant: str) -> list[list[Any]]:
    """``(order_id, rows, version)`` per order of the tenant, read with FINAL."""
    return replicator(app).store.rows(
        f"SELECT order_id, count(), max(version) FROM {{db}}.orders FINAL"
        f" WHERE tenant_id = {store.quote(tenant)} GROUP BY order_id ORDER BY order_id"
    )


async def pending(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(AnalyticsOrderChange))
    return int(count or 0)


async def test_a_posted_order_is_copied_with_its_buyer_lines_and_credits(
    attribution_app: FastAPI, shop: Shop
) -> None:
    await shop.events(
        touch("view", at(hours=1), content="v2", event_id="seen"),
        touch("click", at(hours=2), content="v1", ad="ad1", click_id="k1", event_id="clk"),
    )
    await shop.order(items=[("p1", 1, "100.00"), ("p2", 2, "50.00")])
    await replicator(attribution_app).catch_up()
    credits = await shop.credits("o1")
    assert [(c["content_id"], c["ad_id"]) for c in credits] == [("v1", "ad1"), ("v2", None)]
    assert analytic_orders(attribution_app, shop.tenant) == [
        {
            "order_id": "o1",
            "buyer_id": "u1",
            "status": "paid",
            "visible": 1,
            "products": ["p1", "p2"],
            # The last-touch credits: p1's to the click, p2's to the view of its content.
            "contents": ["v1", "v2"],
            "ads": ["ad1", None],
            "paid_at": "2026-11-01 16:00:00.000000",
        }
    ]
    assert await pending(attribution_app) == 0


async def test_an_order_only_created_is_hidden_until_paid(
    attribution_app: FastAPI, shop: Shop
) -> None:
    await shop.order(status="created", when=at(hours=3))
    await replicator(attribution_app).catch_up()
    [created] = analytic_orders(attribution_app, shop.tenant)
    assert (created["status"], created["visible"], created["paid_at"]) == ("created", 0, None)
    await shop.order(status="paid", when=at(hours=4))
    await replicator(attribution_app).catch_up()
    [paid] = analytic_orders(attribution_app, shop.tenant)
    assert (paid["status"], paid["visible"]) == ("paid", 1)


@pytest.mark.parametrize("how", ["cancelled", "refunded"])
async def test_a_cancelled_or_fully_refunded_order_loses_its_credits(
    attribution_app: FastAPI, shop: Shop, how: str
) -> None:
    """As in the SQL funnel source: the order stays an order step (it was paid, by its
    buyer) but matches no content or ad filter any more (it carries no credits)."""
    await shop.events(touch("click", at(hours=2), content="v1", click_id="k1"))
    await shop.order()
    await replicator(attribution_app).catch_up()
    assert analytic_orders(attribution_app, shop.tenant)[0]["contents"] == ["v1"]
    if how == "cancelled":
        await shop.order(status="cancelled", when=at(hours=5))
    else:
        response = await shop.attribution.post(
            "/v1/orders/o1/refunds",
            json={"refund_id": "r1", "occurred_at": at(hours=5).isoformat(), "amount": "100.00"},
            headers=shop.headers,
        )
        assert response.status_code == 201, response.text
    await replicator(attribution_app).catch_up()
    [order] = analytic_orders(attribution_app, shop.tenant)
    assert (order["status"], order["contents"], order["ads"]) == (how, [], [])
    assert order["visible"] == 1


async def test_a_late_event_that_changes_the_last_touch_changes_the_copy(
    attribution_app: FastAPI, shop: Shop
) -> None:
    await shop.events(touch("click", at(hours=1), content="v1", click_id="k1"))
    await shop.order(items=[("p2", 1, "50.00")])
    await replicator(attribution_app).catch_up()
    # v1 does not show p2: no last-touch credit.
    assert analytic_orders(attribution_app, shop.tenant)[0]["contents"] == []
    # A click on p2's content before the order, received after it: the order is
    # re-attributed to it.
    await shop.events(touch("click", at(hours=3), content="v2", ad="ad2", click_id="k2"))
    assert [(c["content_id"], c["ad_id"]) for c in await shop.credits("o1")] == [("v2", "ad2")]
    await replicator(attribution_app).catch_up()
    [order] = analytic_orders(attribution_app, shop.tenant)
    assert (order["contents"], order["ads"]) == (["v2"], ["ad2"])


async def test_copies_repeated_or_interrupted_leave_one_visible_row_per_order(
    attribution_app: FastAPI, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    for i in range(3):
        await shop.order(order_id=f"o{i}", when=at(hours=4, minutes=i))
    orders = replicator(attribution_app).orders
    # A crash between the insert into ClickHouse and the delete of the outbox rows.
    real_insert = orders.store.insert_rows

    def insert_then_die(table: str, rows: Any) -> None:
        real_insert(table, rows)
        raise RuntimeError("killed after the insert")

    monkeypatch.setattr(orders.store, "insert_rows", insert_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        await orders.catch_up()
    monkeypatch.undo()
    crashed = {
        order_id: int(version)
        for order_id, version in orders.store.rows(
            f"SELECT order_id, max(version) FROM {{db}}.orders WHERE tenant_id = "
            f"{store.quote(shop.tenant)} GROUP BY order_id"
        )
    }
    assert sorted(crashed) == ["o0", "o1", "o2"]
    assert await pending(attribution_app) > 0  # the outbox rows were kept
    await replicator(attribution_app).catch_up()
    await replicator(attribution_app).catch_up()  # nothing left: no new copy
    assert await pending(attribution_app) == 0
    found = analytic_orders(attribution_app, shop.tenant)
    assert [(o["order_id"], o["visible"]) for o in found] == [("o0", 1), ("o1", 1), ("o2", 1)]
    # Copied again from the same outbox rows: the same version, and FINAL shows one copy.
    assert finals(attribution_app, shop.tenant) == [
        ["o0", 1, crashed["o0"]],
        ["o1", 1, crashed["o1"]],
        ["o2", 1, crashed["o2"]],
    ]


async def test_a_copy_of_an_older_state_inserted_last_still_loses(
    attribution_app: FastAPI, shop: Shop
) -> None:
    """Two batches (two processes, no lock between them) read an order before and after a
    change, and the older one inserts last: the version is the change read, so the newer
    state wins anyway."""
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    orders = replicator(attribution_app).orders
    await shop.order(order_id="o1", when=at(hours=4))
    older = await orders.read_batch()
    await shop.order(order_id="o1", status="cancelled", when=at(hours=5))
    newer = await orders.read_batch()
    assert [d["status"] for d in older.documents] == ["paid"]
    assert [d["status"] for d in newer.documents] == ["cancelled"]
    await orders.copy(newer)
    await orders.copy(older)
    assert [o["status"] for o in analytic_orders(attribution_app, shop.tenant)] == ["cancelled"]
    assert await pending(attribution_app) == 0


async def test_startup_copies_the_orders_the_store_missed(
    attribution_app: FastAPI, shop: Shop
) -> None:
    """Orders committed but never copied (the process died first) are copied at startup,
    with a version above every copy already in the store."""
    await replicator(attribution_app).catch_up()
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    before = replicator(attribution_app).store.rows("SELECT max(version) FROM {db}.orders")
    await shop.order(order_id="late", when=at(hours=4))
    restarted = await start_replication(
        attribution_app.state.settings, attribution_app.state.sessionmaker
    )
    rows = restarted.store.rows(
        f"SELECT order_id, version FROM {{db}}.orders FINAL WHERE tenant_id = "
        f"{store.quote(shop.tenant)}"
    )
    assert [row[0] for row in rows] == ["late"]
    assert int(rows[0][1]) > int(before[0][0] or 0)
    assert await pending(attribution_app) == 0


async def test_each_tenant_has_only_its_own_orders(
    attribution_app: FastAPI, shop: Shop, catalog: Any, make_token: TokenFactory
) -> None:
    other_tenant = new_tenant()
    other = await make_shop(
        catalog, shop.attribution, other_tenant, make_token(other_tenant, "admin")
    )
    await shop.order(order_id="same", user="u1")
    await other.order(order_id="same", user="u9", items=[("p2", 1, "50.00")])
    await replicator(attribution_app).catch_up()
    mine = analytic_orders(attribution_app, shop.tenant)
    theirs = analytic_orders(attribution_app, other_tenant)
    assert [(o["order_id"], o["buyer_id"], o["products"]) for o in mine] == [("same", "u1", ["p1"])]
    assert [(o["order_id"], o["buyer_id"], o["products"]) for o in theirs] == [
        ("same", "u9", ["p2"])
    ]


async def test_a_funnel_reflects_an_order_as_soon_as_it_is_answered(
    attribution_app: FastAPI, shop: Shop, make_token: TokenFactory
) -> None:
    await stop_replication(attribution_app.state.analytics_task)  # no copy in the background
    read = auth(make_token(shop.tenant, "reports:read"))
    query = {
        "steps": [{"type": "click"}, {"type": "order", "filters": {"content_id": "v1"}}],
        "from": at(hours=0).isoformat(),
        "to": at(hours=8).isoformat(),
    }
    seen = []
    for i in range(2):
        user = f"buyer-{i}"
        await shop.events(touch("click", at(hours=1), user=user, content="v1"))
        await shop.order(order_id=f"o{i}", user=user, when=at(hours=2))
        answer = await shop.attribution.post("/v1/funnels", json=query, headers=read)
        assert answer.status_code == 200, answer.text
        seen.append([step["users"] for step in answer.json()["steps"]])
    # Cancelled: no credit is left, so the order no longer matches the content filter.
    await shop.order(order_id="o1", status="cancelled", user="buyer-1", when=at(hours=3))
    answer = await shop.attribution.post("/v1/funnels", json=query, headers=read)
    seen.append([step["users"] for step in answer.json()["steps"]])
    assert seen == [[1, 1], [2, 2], [2, 1]]
