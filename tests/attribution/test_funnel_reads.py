"""The funnel's database reads through ``POST /v1/funnels``, on SQLite and PostgreSQL.

Aimed at the shortcuts of the per-user reads: users who reach step 1 only (no later-step
row within reach), rows out of every start's reach, funnels whose first step is
``order`` (on SQLite the order rows are read apart and merged per user, and buyers without
any event row still count), breakdowns. Compared with the brute-force reference.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.attribution.conftest import WorldFactory
from tests.attribution.funnel_data import SLOTS, iso, post_json, reference

pytestmark = pytest.mark.usefixtures("funnel_clock")


STEPS: list[list[dict[str, Any]]] = [
    [{"type": "impression"}, {"type": "view"}, {"type": "click"}, {"type": "order"}],
    [{"type": "impression"}, {"type": "add_to_cart"}, {"type": "order"}],  # sparse later steps
    [{"type": "order"}, {"type": "click"}],
    [{"type": "order"}, {"type": "order"}],
    [{"type": "view"}, {"type": "view"}, {"type": "view"}],
    [{"type": "click"}, {"type": "order", "filters": {"product_id": "p1"}}],
]


async def test_sparse_later_steps_and_order_first_funnels_match_the_reference(
    attribution: httpx.AsyncClient, make_world: WorldFactory
) -> None:
    rng = random.Random(7)
    # Many users with few events each: many reach step 1 only; orders of users who may
    # have no event at all.
    world = await make_world(rng, users=40, orders=12)
    checked = dropped = 0
    for steps in STEPS:
        for window in (20, 250, None):
            for extra in ({}, {"breakdown": "content_id"}, {"filters": {"platform": "douyin"}}):
                query: dict[str, Any] = {
                    "steps": steps,
                    "from": iso(world.at(rng.randrange(SLOTS // 3))),
                    "to": iso(world.at(SLOTS + 1)),
                    **extra,
                }
                if window is not None:
                    query["window_seconds"] = window
                body = await post_json(attribution, world.token, "/v1/funnels", query)
                assert body == reference(world.items, query), query
                checked += 1
                dropped += body["steps"][0]["users"] > body["steps"][1]["users"] > 0
    assert checked == len(STEPS) * 9
    assert dropped >= checked // 4  # users stopping at step 1 are common here
