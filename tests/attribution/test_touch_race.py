"""An order attributed while a late touch of its buyer commits never misses that touch.

Under READ COMMITTED neither transaction sees the other's uncommitted rows: without the
per-buyer advisory lock the order reads no touches, the late event's re-attribution finds no
order, and both commit. The test holds the order's transaction open right after it read the
buyer's touches, posts the late click meanwhile, then lets the order finish: the order's
credits must name the click. SQLite runs one writer at a time, so the race is PostgreSQL's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.attribution.credit import service as credit_service
from tests.attribution.order_setup import Shop, at, make_shop, touch


@pytest.fixture
async def shop(catalog, attribution, make_token, tenant) -> Shop:
    return await make_shop(catalog, attribution, tenant, make_token(tenant, "admin"))


async def test_a_late_click_committed_during_the_order_is_credited(
    shop: Shop, db_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db_backend != "postgres":
        pytest.skip("SQLite serialises writers; the race needs concurrent transactions")
    read_touches = credit_service.buyer_evidence
    paused, proceed = asyncio.Event(), asyncio.Event()
    first_call = True

    async def hold_after_reading(*args: Any, **kwargs: Any) -> Any:
        nonlocal first_call
        found = await read_touches(*args, **kwargs)
        if first_call:  # the order's own read, not the late event's re-attribution
            first_call = False
            paused.set()
            await asyncio.wait_for(proceed.wait(), timeout=30)
        return found

    monkeypatch.setattr(credit_service, "buyer_evidence", hold_after_reading)
    order = asyncio.create_task(shop.order(when=at(hours=4)))
    await asyncio.wait_for(paused.wait(), timeout=30)
    late_click = touch("click", at(hours=3), product="p1", click_id="c-late", event_id="late")
    event = asyncio.create_task(shop.events(late_click))
    # Give the event every chance to commit while the order is held (with the lock it can't).
    await asyncio.wait({event}, timeout=1.5)
    proceed.set()
    await order
    await event
    credits = await shop.credits("o1")
    assert [c["event_id"] for c in credits] == ["late"]
