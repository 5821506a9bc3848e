"""Funnel modes through the HTTP API (``POST /v1/funnels`` with ``order`` and
``exclusions``, ``/time-to-convert``, ``/users``) on SQLite and PostgreSQL, against the
brute-force reference of ``reference_modes`` over worlds posted through the public APIs."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.attribution.conftest import WorldFactory
from tests.attribution.funnel_data import (
    BREAKDOWNS,
    FILTER_VALUES,
    World,
    assert_names,
    iso,
    post_json,
    random_query,
    refusal,
)
from tests.attribution.reference_modes import (
    reference_modes,
    reference_time_to_convert,
    reference_users,
)
from tests.conftest import auth

pytestmark = pytest.mark.usefixtures("funnel_clock")

STEPS = [{"type": "view"}, {"type": "click"}, {"type": "order"}]
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
EXCLUDED = ("impression", "view", "click", "like", "share", "order")


def with_mode(rng: random.Random, query: dict[str, Any]) -> dict[str, Any]:
    query["order"] = rng.choice(("ordered", "strict", "unordered"))
    n = len(query["steps"])
    if query["order"] != "unordered" and rng.random() < 0.6:
        f = rng.randrange(n - 1)
        exclusion: dict[str, Any] = {
            "type": rng.choice(EXCLUDED),
            "from_step": f,
            "to_step": rng.randint(f + 1, n - 1),
        }
        if rng.random() < 0.3:
            key = rng.choice(tuple(FILTER_VALUES))
            exclusion["filters"] = {key: rng.choice(FILTER_VALUES[key])}
        query["exclusions"] = [exclusion]
    return query


def mode_queries(rng: random.Random, world: World, count: int) -> Iterator[dict[str, Any]]:
    """``count`` random queries of every mode without a breakdown, each drawn when asked for."""
    for _ in range(count):
        query = with_mode(rng, random_query(rng, world))
        query.pop("breakdown", None)
        yield query


async def assert_mode_query_refused(
    client: httpx.AsyncClient,
    token: str,
    path: str,
    extra: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    """``POST /v1/funnels{path}`` of :data:`STEPS` over :data:`RANGE` with ``extra`` is a 422
    problem naming ``field`` and saying every one of ``words``."""
    body = {"steps": STEPS, **RANGE, **extra}
    assert_names(await refusal(client, token, f"/v1/funnels{path}", body), field, words)


async def test_every_mode_matches_the_brute_force_reference(
    attribution: httpx.AsyncClient, make_world: WorldFactory, report_token: str
) -> None:
    rng = random.Random(7)
    world = await make_world(rng, events=90)
    answers = []
    for q, query in enumerate(mode_queries(rng, world, 30)):
        if q % 3 == 0:
            query["breakdown"] = BREAKDOWNS[q // 3 % len(BREAKDOWNS)]
        got = await post_json(attribution, report_token, "/v1/funnels", query)
        assert got == reference_modes(world.items, query), query
        answers.append(got)
    assert sum(got["steps"][1]["users"] > 0 for got in answers) >= 5  # some get past step 1


async def test_time_to_convert_and_the_users_of_a_step_match_the_reference(
    attribution: httpx.AsyncClient, make_world: WorldFactory, report_token: str
) -> None:
    rng = random.Random(11)
    world = await make_world(rng, events=90)
    converted = 0
    for query in mode_queries(rng, world, 12):
        n = len(query["steps"])
        step = rng.randrange(1, n)
        for status in ("reached", "dropped"):
            body = {**query, "step": step, "status": status}
            got = await post_json(attribution, report_token, "/v1/funnels/users", body)
            assert got == {
                "users": reference_users(world.items, query, step, status),
                "next_cursor": None,
            }
        if query["order"] == "unordered":
            continue
        timed = {**query, "from_step": 0}
        if rng.random() < 0.5:
            timed["bins"] = rng.randint(1, 5)
        got = await post_json(attribution, report_token, "/v1/funnels/time-to-convert", timed)
        assert got == reference_time_to_convert(world.items, timed), timed
        converted += got["users"]
    assert converted > 0


async def test_the_users_of_a_step_come_in_pages_and_as_csv(
    attribution: httpx.AsyncClient, make_world: WorldFactory, report_token: str
) -> None:
    rng = random.Random(3)
    world = await make_world(rng, events=120, users=9)
    query = {
        "steps": [{"type": "impression"}, {"type": "view"}],
        "from": iso(world.at(0)),
        "to": iso(world.at(30)),
    }
    expected = reference_users(world.items, query, 0, "reached")
    assert len(expected) >= 4
    seen: list[str] = []
    cursor = None
    for _ in range(len(expected)):
        page = await post_json(
            attribution,
            report_token,
            "/v1/funnels/users",
            {**query, "step": 0, "limit": 2, "cursor": cursor},
        )
        seen += page["users"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    response = await attribution.post(
        "/v1/funnels/users",
        params={"format": "csv"},
        json={**query, "step": 0, "limit": 3},
        headers=auth(report_token),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.split("\r\n") == ["user_id", *expected[:3], ""]
    assert response.headers["x-next-cursor"] == expected[2]


async def test_explicit_defaults_reproduce_the_plain_funnel(
    attribution: httpx.AsyncClient, make_world: WorldFactory, report_token: str
) -> None:
    rng = random.Random(5)
    world = await make_world(rng, events=90)
    for _ in range(6):
        query = random_query(rng, world)
        plain = await post_json(attribution, report_token, "/v1/funnels", query)
        explicit = await post_json(
            attribution,
            report_token,
            "/v1/funnels",
            {**query, "order": "ordered", "exclusions": []},
        )
        assert explicit == plain == reference_modes(world.items, query)


@pytest.mark.parametrize(
    ("path", "extra", "field", "words"),
    [
        ("", {"order": "sideways"}, "order", ["ordered", "strict", "unordered"]),
        (
            "",
            {"exclusions": [{"type": "like", "from_step": 0, "to_step": 3}]},
            "exclusions.0.to_step",
            ["0 to 2"],
        ),
        (
            "",
            {"exclusions": [{"type": "like", "from_step": 1, "to_step": 1}]},
            "exclusions.0",
            ["must be smaller"],
        ),
        (
            "",
            {"exclusions": [{"type": "like", "from_step": 0, "to_step": 1}], "order": "unordered"},
            "exclusions",
            ["`ordered` or `strict`"],
        ),
        (
            "",
            {"exclusions": [{"type": "poke", "from_step": 0, "to_step": 1}]},
            "exclusions.0.type",
            ["click"],
        ),
        ("/time-to-convert", {"to_step": 3}, "to_step", ["0 to 2"]),
        ("/time-to-convert", {"from_step": 2, "to_step": 1}, "from_step", ["smaller than to_step"]),
        ("/time-to-convert", {"order": "unordered"}, "order", ["`ordered` or `strict`"]),
        ("/time-to-convert", {"bins": 101}, "bins", ["100"]),
        ("/users", {}, "step", ["required"]),
        ("/users", {"step": 3}, "step", ["0 to 2"]),
        ("/users", {"step": 0, "status": "dropped"}, "step", ["from 1 on"]),
        ("/users", {"step": 1, "status": "gone"}, "status", ["reached", "dropped"]),
        ("/users", {"step": 1, "breakdown": "platform"}, "breakdown", ["no breakdown"]),
        ("/users", {"step": 1, "limit": 0}, "limit", ["greater than or equal to 1"]),
    ],
)
async def test_invalid_mode_queries_are_422_naming_the_field(
    attribution: httpx.AsyncClient, report_token: str, path, extra, field, words
) -> None:
    await assert_mode_query_refused(attribution, report_token, path, extra, field, words)
