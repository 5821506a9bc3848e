"""``FunnelAccumulator.add_split`` (what the database reads feed) against the references.

The reads hand each user over as two lists: the times of in-range events matching step 1
only, and the packed later-step events; events matching step 1 only out of range are left
out. Users with no later-step event within reach are counted at step 1 without a walk,
the later events are walked with the starts found by bisection, and ties fall back to the
exact DP. All of it must give what the brute-force reference gives.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.attribution.funnels.engine import (
    MASK_BITS,
    FunnelAccumulator,
    FunnelResult,
    evaluate,
)
from tests.attribution.reference_funnel import reference_funnel
from tests.attribution.test_funnel_engine import as_plain, reference_properties

S = 1_000_000
IMP, V, C = 0b001, 0b010, 0b100  # impression, view, click for a 3-step funnel
Row = tuple[str, int, int, str | None]


def split_user(
    events: list[tuple[int, int, str | None]], n: int, lo: int, hi: int
) -> tuple[list[int], list[int], list[str | None], list[str | None]]:
    """One user's events as the database reads hand them over (see repository._per_user)."""
    full = (1 << n) - 1
    pure = sorted((t, v or "") for t, m, v in events if m & full == 1 and lo <= t < hi)
    later = sorted(((t << MASK_BITS | m & full), v or "") for t, m, v in events if m & full > 1)
    return (
        [t for t, _ in pure],
        [x for x, _ in later],
        [v or None for _, v in pure],
        [v or None for _, v in later],
    )


def run_split(
    rows: list[Row], n_steps: int, window_us: int, from_us: int, to_us: int, breakdown: bool
) -> FunnelResult:
    acc = FunnelAccumulator(n_steps, window_us, from_us, to_us, breakdown)
    users: dict[str, list[tuple[int, int, str | None]]] = {}
    for user, t, mask, value in rows:
        users.setdefault(user, []).append((t, mask, value))
    for events in users.values():
        starts, later, start_values, later_values = split_user(events, n_steps, from_us, to_us)
        if breakdown:
            acc.add_split(starts, later, start_values, later_values)
        else:
            acc.add_split(starts, later)
    return acc.result()


def check(rows: list[Row], params: dict[str, int], breakdown: bool) -> None:
    got = as_plain(run_split(rows, **params, breakdown=breakdown))
    assert got == reference_funnel(rows, **params, breakdown=breakdown)


# --------------------------------------------------------------------------- properties


(
    test_split_matches_reference,
    test_split_matches_reference_with_breakdown,
    test_split_matches_reference_deeper_funnels,
) = reference_properties(check)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_split_matches_evaluate_on_long_histories(data) -> None:
    # Beyond the brute force: long histories, many step-1-only events, a few ties.
    n = data.draw(st.integers(2, 6))
    size = data.draw(st.integers(1, 60))
    times = st.integers(0, 400)
    masks = st.one_of(st.just(1), st.just(1), st.sampled_from([1 << k for k in range(n)]))
    masks = st.one_of(masks, st.integers(0, (1 << n) - 1))
    values = st.sampled_from([None, "x", "y"])
    rows: list[Row] = [
        (f"u{data.draw(st.integers(0, 3))}", data.draw(times), data.draw(masks), data.draw(values))
        for _ in range(size)
    ]
    lo = data.draw(st.integers(0, 200))
    params = {
        "n_steps": n,
        "window_us": data.draw(st.integers(0, 300)),
        "from_us": lo,
        "to_us": lo + data.draw(st.integers(0, 300)),
    }
    ordered = sorted(rows, key=lambda r: (r[0], r[1]))
    for breakdown in (False, True):
        expected = evaluate(ordered, **params, breakdown=breakdown)
        assert run_split(rows, **params, breakdown=breakdown) == expected


# --------------------------------------------------------------------------- hand-written


def counts(result: FunnelResult) -> list[int]:
    return [s.users for s in result.steps]


PARAMS = {"n_steps": 3, "window_us": 60 * S, "from_us": 0, "to_us": 100 * S}


def test_users_with_step_one_events_only_count_at_step_one_under_each_value() -> None:
    rows: list[Row] = [
        ("a", 1 * S, IMP, "douyin"),
        ("a", 2 * S, IMP, "tiktok"),
        ("a", 3 * S, IMP, "douyin"),
        ("b", 5 * S, IMP, None),
        ("c", 200 * S, IMP, "douyin"),  # out of range: no start, not counted
        ("d", 4 * S, IMP, "tiktok"),
        ("d", 9 * S, V, "douyin"),
    ]
    got = run_split(rows, **PARAMS, breakdown=True)
    assert counts(got) == [3, 1, 0]
    by_value = {b.value: [s.users for s in b.steps] for b in got.breakdown}
    assert by_value == {"douyin": [1, 0, 0], "tiktok": [2, 1, 0]}
    check(rows, PARAMS, breakdown=True)


def test_later_steps_out_of_reach_of_every_start() -> None:
    rows: list[Row] = [
        ("a", 10 * S, V, None),  # before the only start
        ("a", 20 * S, IMP, None),
        ("a", 81 * S, V, None),  # after the start + window
        ("b", 5 * S, V, None),
        ("b", 20 * S, IMP, None),
        ("b", 30 * S, IMP, None),
        ("b", 95 * S, C, None),  # within reach of the last start only, but no view before
    ]
    assert counts(run_split(rows, **PARAMS, breakdown=False)) == [2, 0, 0]
    check(rows, PARAMS, breakdown=False)


@pytest.mark.parametrize("breakdown", [False, True])
def test_a_later_step_at_the_time_of_a_start_chains_from_it(breakdown: bool) -> None:
    rows: list[Row] = [
        ("a", 1 * S, IMP, "x"),
        ("a", 7 * S, IMP, "y"),
        ("a", 7 * S, V, None),  # same time as the latest start: a 0 s step
        ("a", 8 * S, C, None),
        ("b", 2 * S, IMP | V, "x"),  # one event cannot be both steps
        ("b", 2 * S, V, None),
        ("b", 3 * S, IMP | V, "y"),
    ]
    got = run_split(rows, **PARAMS, breakdown=breakdown)
    assert counts(got) == [2, 2, 1]
    # a: the start at 7 s then the view at 7 s; b: the event at 2 s starts, the view at 2 s
    # follows (the one at 3 s starts later, but nothing can follow it).
    assert got.steps[1].median_seconds_from_previous == 0.0
    check(rows, PARAMS, breakdown=breakdown)


def test_events_matching_step_one_and_a_later_step_start_and_continue() -> None:
    # view → view → view: every event is both a start and a later step.
    params = {"n_steps": 3, "window_us": 10 * S, "from_us": 0, "to_us": 100 * S}
    vvv = 0b111
    rows: list[Row] = [
        ("a", 1 * S, vvv, "x"),
        ("a", 4 * S, vvv, "y"),
        ("a", 9 * S, vvv, "x"),
        ("a", 30 * S, vvv, "y"),
        ("b", 150 * S, vvv, "x"),  # out of range: may continue, cannot start
    ]
    got = run_split(rows, **params, breakdown=True)
    assert counts(got) == [1, 1, 1]
    check(rows, params, breakdown=True)
