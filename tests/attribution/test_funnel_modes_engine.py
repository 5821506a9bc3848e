"""The funnel modes' evaluator (``modes``) against the brute-force reference, without a
database: random streams with many equal times, every mode, exclusions, breakdowns and
first conversions; and the worked example of each rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.attribution.funnels.engine import FunnelResult
from services.attribution.funnels.modes import (
    SKIP,
    ModeAccumulator,
    ModeSpec,
    StreamItem,
    evaluate_user,
)
from tests.attribution.funnel_data import Item, S, iso, mark_optional, step_masks, to_us
from tests.attribution.reference_modes import (
    _per_user,
    reference_conversion_times,
    reference_modes,
)

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
TYPES = ("view", "click", "like", "order")
VALUES = ("a", "b")


PRODUCTS = ("p", "q")


def _items(rng: random.Random, count: int) -> list[Item]:
    out = []
    for i in range(count):
        value = rng.choice((*VALUES, None))
        products = frozenset(rng.sample(PRODUCTS, rng.choice((0, 1, 1, 2))))
        dims = {"content_id": frozenset([value]) if value else frozenset(), "product_id": products}
        t = to_us(T0) + rng.randrange(8) * 10 * S + rng.choice((0, 0, 1))
        out.append(Item(rng.choice(("u1", "u2", "u3")), t, rng.choice(TYPES), dims, f"i{i:02d}"))
    return out


def _query(rng: random.Random) -> dict[str, Any]:
    n = rng.choice((2, 3, 3, 4, 4))
    steps: list[dict[str, Any]] = [{"type": rng.choice(TYPES[:3])} for _ in range(n)]
    if rng.random() < 0.3:
        steps[rng.randrange(n)]["filters"] = {"content_id": rng.choice(VALUES)}
    query: dict[str, Any] = {
        "steps": steps,
        "from": iso(T0 + dt.timedelta(seconds=rng.choice((0, 10, 20)))),
        "to": iso(T0 + dt.timedelta(seconds=rng.choice((30, 50, 90)))),
        "window_seconds": rng.choice((10, 20, 40, 100)),
        "order": rng.choice(("ordered", "strict", "unordered")),
    }
    ordered = query["order"] != "unordered"
    required = mark_optional(rng, query, 0.5)
    if ordered and rng.random() < 0.5:
        exclusions = []
        for _ in range(rng.choice((1, 1, 2))):
            f = rng.choice(required[:-1])
            to = rng.choice([k for k in required if k > f])
            exclusions.append({"type": rng.choice(TYPES), "from_step": f, "to_step": to})
        query["exclusions"] = exclusions
    if rng.random() < 0.3:
        query["filters"] = {"content_id": rng.choice(VALUES)}
    if rng.random() < 0.3:
        query["hold_constant"] = rng.sample(("product_id", "content_id"), rng.choice((1, 1, 2)))
    if rng.random() < 0.5:
        query["breakdown"] = "content_id"
        attributions = (
            ("first_step", "all_steps", "last_step", "step")
            if ordered
            else (
                "first_step",
                "all_steps",
            )
        )
        query["breakdown_attribution"] = rng.choice(attributions)
        if query["breakdown_attribution"] == "step":
            query["breakdown_step"] = rng.choice(required)
    return query


def _case(seed: int, count: int) -> tuple[random.Random, list[Item], dict[str, Any]]:
    """The random generator of ``seed``, ``count`` random items and a random query."""
    rng = random.Random(seed)
    items = _items(rng, count)
    return rng, items, _query(rng)


def _spec(query: dict[str, Any], convert: tuple[int, int] | None = None) -> ModeSpec:
    return ModeSpec(
        n_steps=len(query["steps"]),
        window_us=query["window_seconds"] * S,
        from_us=to_us(dt.datetime.fromisoformat(query["from"])),
        to_us=to_us(dt.datetime.fromisoformat(query["to"])),
        order=query["order"],
        exclusions=tuple((x["from_step"], x["to_step"]) for x in query.get("exclusions", [])),
        convert=convert,
        optional=sum(1 << k for k, step in enumerate(query["steps"]) if step.get("optional")),
        hold=bool(query.get("hold_constant")),
        attribution=query.get("breakdown_attribution", "first_step"),
        attribution_step=query.get("breakdown_step", 0),
    )


def _held(item: Item, hold: list[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(itertools.product(*(sorted(item.dims[key]) for key in hold)))


def _streams(items: list[Item], query: dict[str, Any]) -> list[tuple[str, list[StreamItem]]]:
    """The users' streams as the SQL source hands them over (masks by the reference)."""
    out = []
    hold = query.get("hold_constant") or []
    for user, user_items in _per_user(items).items():
        steps = step_masks(user_items, query["steps"], query.get("filters") or {})
        excluded = step_masks(user_items, query.get("exclusions") or [], query.get("filters") or {})
        out.append(
            (
                user,
                [
                    (item.t, m, x, item.dims["content_id"], _held(item, hold))
                    for item, m, x in zip(user_items, steps, excluded, strict=True)
                ],
            )
        )
    return out


def _plain(result: FunnelResult, query: dict[str, Any]) -> dict[str, Any]:
    types = [s["type"] for s in query["steps"]]

    def steps(stats: list[Any]) -> list[dict[str, Any]]:
        return [
            {"type": t, **dataclasses.asdict(stat)} for t, stat in zip(types, stats, strict=True)
        ]

    return {
        "steps": steps(result.steps),
        "breakdown": [{"value": b.value, "steps": steps(b.steps)} for b in result.breakdown],
    }


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 40))
def test_every_mode_matches_the_brute_force_reference(seed: int, count: int) -> None:
    _, items, query = _case(seed, count)
    acc = ModeAccumulator(_spec(query), breakdown="breakdown" in query)
    acc.add_users(_streams(items, query))
    assert _plain(acc.result(), query) == reference_modes(items, query), query


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 40))
def test_first_conversions_match_the_brute_force_reference(seed: int, count: int) -> None:
    rng, items, query = _case(seed, count)
    query["order"] = rng.choice(("ordered", "strict"))
    n = len(query["steps"])
    required = [k for k in range(n) if not query["steps"][k].get("optional")]
    a = rng.choice(required[:-1])
    b = rng.choice([k for k in required if k > a])
    query.update(from_step=a, to_step=b)
    acc = ModeAccumulator(_spec(query, (a, b)))
    acc.add_users(_streams(items, query))
    assert sorted(acc.conversions) == reference_conversion_times(items, query), query


# --------------------------------------------------------------------------- worked examples

VIEW, CLICK, LIKE = 1, 2, 4  # masks of a 3-step funnel view → click → like
NONE: frozenset[str] = frozenset()
WIDE = ModeSpec(3, 100 * S, 0, 10**15)


def _at(
    seconds: int,
    mask: int,
    excluded: int = 0,
    values: frozenset[str] = NONE,
    held: tuple[str, ...] | None = None,
) -> StreamItem:
    return (seconds * S, mask, excluded, values, frozenset() if held is None else frozenset([held]))


def test_strict_needs_each_step_right_after_the_previous_one() -> None:
    stream = [_at(1, VIEW), _at(2, 0), _at(3, CLICK), _at(4, LIKE)]  # 0: another event type
    assert evaluate_user(stream, WIDE).level == 3
    strict = dataclasses.replace(WIDE, order="strict")
    assert evaluate_user(stream, strict).level == 1  # the other event breaks view → click
    assert evaluate_user([_at(1, VIEW), _at(3, CLICK), _at(4, LIKE)], strict).level == 3


def test_of_two_strict_chains_starting_at_one_instant_the_earlier_later_steps_win() -> None:
    # Two items at 1 s match the first two steps: the chain from the first takes the second
    # at 1 s, the chain from the second takes the click at 5 s. Both reach step 2.
    strict = dataclasses.replace(WIDE, order="strict")
    both = VIEW | CLICK
    outcome = evaluate_user([_at(1, both), _at(1, both), _at(5, CLICK)], strict)
    assert (outcome.level, outcome.chain) == (2, (1 * S, 1 * S))


def test_unordered_counts_distinct_steps_within_the_window_of_the_earliest() -> None:
    unordered = dataclasses.replace(WIDE, order="unordered", window_us=10 * S)
    stream = [_at(1, LIKE), _at(5, CLICK), _at(9, VIEW), _at(30, VIEW)]
    assert evaluate_user(stream, WIDE).level == 1  # in order: view only (then nothing)
    assert evaluate_user(stream, unordered).level == 3
    # The earliest must lie in [from, to): here only the like at 1 s does.
    late = dataclasses.replace(unordered, from_us=0, to_us=2 * S)
    assert evaluate_user(stream, late).level == 3
    gone = dataclasses.replace(unordered, from_us=2 * S, to_us=3 * S)
    assert evaluate_user(stream, gone).level == 0


def test_an_excluded_event_between_two_steps_voids_the_chain() -> None:
    spec = dataclasses.replace(WIDE, exclusions=((0, 2),))  # nothing excluded view … like
    clean = [_at(1, VIEW), _at(2, CLICK), _at(5, LIKE)]
    assert evaluate_user(clean, spec).level == 3
    blocked = [_at(1, VIEW), _at(2, CLICK), _at(3, 0, 1), _at(5, LIKE)]
    # view → click stops before step 2 with the excluded event in its window: void too.
    assert evaluate_user(blocked, spec) == evaluate_user([], spec)
    assert evaluate_user(blocked, spec).level == 0
    # A later start after the excluded event is clean.
    again = [*blocked, _at(6, VIEW), _at(7, CLICK), _at(8, LIKE)]
    assert evaluate_user(again, spec).chain == (6 * S, 7 * S, 8 * S)
    # Outside the window of a chain stopping early, an excluded event does not void it.
    narrow = dataclasses.replace(spec, window_us=1 * S)
    assert evaluate_user(blocked, narrow).level == 2


def test_the_first_conversion_starts_earliest_then_ends_earliest() -> None:
    spec = dataclasses.replace(WIDE, convert=(0, 2))
    stream = [_at(1, VIEW), _at(4, VIEW), _at(5, CLICK), _at(7, LIKE), _at(9, LIKE)]
    outcome = evaluate_user(stream, spec)
    assert outcome.chain == (4 * S, 5 * S, 7 * S)  # the chosen chain starts latest
    assert outcome.conversion_us == 6 * S  # the first conversion starts at 1 s: 1 → 7


def _counts(spec: ModeSpec, users: dict[str, list[StreamItem]], **kw: Any) -> list[Any]:
    acc = ModeAccumulator(spec, **kw)
    acc.add_users(users.items())
    return [(stat.users, stat.dropped_off) for stat in acc.result().steps]


def test_an_optional_step_counts_the_chains_having_it_and_the_next_step_counts_everyone() -> None:
    spec = dataclasses.replace(WIDE, optional=0b010)  # view → like (optional) → click
    like, click = CLICK, LIKE  # bit 1 is the optional like, bit 2 the click
    users = {
        "did all": [_at(1, VIEW), _at(2, like), _at(3, click)],
        "skipped": [_at(1, VIEW), _at(3, click)],
        "liked only": [_at(1, VIEW), _at(2, like)],
        "viewed": [_at(1, VIEW)],
    }
    # like: the two whose chain has it; click: both who clicked, measured from view (4 → 2).
    assert _counts(spec, users) == [(4, None), (2, 2), (2, 2)]
    acc = ModeAccumulator(spec)
    acc.add_users(users.items())
    click_stat = acc.result().steps[2]
    assert click_stat.conversion_from_previous == 0.5  # from view, the required step before
    assert click_stat.median_seconds_from_previous == 2.0  # view at 1 s → click at 3 s
    # A chain includes the optional step when it can, before preferring a later start.
    outcome = evaluate_user([_at(1, VIEW), _at(2, like), _at(3, VIEW), _at(4, click)], spec)
    assert outcome.chain == (1 * S, 2 * S, 4 * S)
    skipped = evaluate_user([_at(1, VIEW), _at(3, click)], spec).chain
    assert skipped == (1 * S, SKIP, 3 * S)
    # Strict: a skipped optional step leaves the next required item directly after.
    strict = dataclasses.replace(spec, order="strict")
    assert evaluate_user([_at(1, VIEW), _at(3, click)], strict).level == 3
    assert evaluate_user([_at(1, VIEW), _at(2, 0), _at(3, click)], strict).level == 1


def test_held_dimensions_keep_one_value_along_the_chain() -> None:
    spec = dataclasses.replace(WIDE, hold=True)
    same = [_at(1, VIEW, held=("p1",)), _at(2, CLICK, held=("p1",)), _at(3, LIKE, held=("p1",))]
    assert evaluate_user(same, spec).level == 3
    switched = [_at(1, VIEW, held=("p1",)), _at(2, CLICK, held=("p2",)), _at(3, LIKE)]
    assert evaluate_user(switched, WIDE).level == 3  # without the hold
    assert evaluate_user(switched, spec).level == 1  # p2's click cannot follow p1's view
    # An item with several values (an order with two products) joins a chain of either.
    both: StreamItem = (3 * S, LIKE, 0, NONE, frozenset({("p1",), ("p2",)}))
    assert evaluate_user([*switched[:2], both], spec).level == 1
    later = [_at(1, VIEW, held=("p2",)), _at(2, CLICK, held=("p2",)), both]
    assert evaluate_user(later, spec).level == 3
    # An item lacking the dimension cannot start a held chain.
    assert evaluate_user([_at(1, VIEW), _at(2, CLICK, held=("p1",))], spec).level == 0


def test_breakdown_attribution_picks_the_item_whose_value_places_the_user() -> None:
    a, b = frozenset({"a"}), frozenset({"b"})
    users = {"u": [_at(1, VIEW, values=a), _at(2, CLICK, values=b), _at(3, LIKE, values=b)]}

    def by_value(attribution: str, step: int = 0) -> dict[str, list[int]]:
        spec = dataclasses.replace(WIDE, attribution=attribution, attribution_step=step)
        acc = ModeAccumulator(spec, breakdown=True)
        acc.add_users(users.items())
        return {row.value: [stat.users for stat in row.steps] for row in acc.result().breakdown}

    assert by_value("first_step") == {"a": [1, 1, 1]}  # the view's value
    assert by_value("last_step") == {"b": [1, 1, 1]}  # the like's: the furthest step reached
    assert by_value("step", 1) == {"b": [1, 1, 1]}  # the click's
    # all_steps: every item of the chain has the value; none starts with b, a's stops at view.
    assert by_value("all_steps") == {"a": [1, 0, 0]}
