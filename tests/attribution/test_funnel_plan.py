"""The funnel planner: the request a source answers, and how the SQL store reads it (pure)."""

from __future__ import annotations

import datetime as dt

from services.attribution.funnels.planner import FunnelPlan, StepPlan, plan_funnel, read_plan
from services.attribution.funnels.schemas import FunnelQuery

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


def plan(
    *steps: str,
    hours: float = 24,
    window: dt.timedelta = dt.timedelta(days=7),
    end: dt.datetime | None = None,
    filters: dict[str, str] | None = None,
    breakdown: str | None = None,
) -> FunnelPlan:
    end = end or START + dt.timedelta(hours=hours)
    return FunnelPlan(
        tenant_id="t",
        steps=tuple(StepPlan(s, {}) for s in steps),
        filters=filters or {},
        start=end - dt.timedelta(hours=hours),
        end=end,
        window=window,
        breakdown=breakdown,
    )


def test_a_query_becomes_a_plan_in_utc_with_its_filters_merged_per_step() -> None:
    query = FunnelQuery.model_validate(
        {
            "steps": [{"type": "view", "filters": {"ad_id": "a1"}}, {"type": "order"}],
            "from": "2026-01-01T08:00:00+08:00",
            "to": "2026-01-02T00:00:00Z",
            "window_seconds": 90,
            "filters": {"content_kind": "live", "platform": "douyin"},
            "breakdown": "content_id",
        }
    )
    got = plan_funnel("tenant-a", query)
    assert got.tenant_id == "tenant-a"
    assert [(s.type, dict(s.filters)) for s in got.steps] == [
        ("view", {"ad_id": "a1"}),
        ("order", {}),
    ]
    assert dict(got.filters) == {"platform": "douyin", "content_kind": "live"}
    assert (got.start, got.end) == (START, START + dt.timedelta(days=1))
    assert got.window_us == 90_000_000
    assert got.until == START + dt.timedelta(days=1, seconds=90)
    assert got.event_types == ["view"]
    assert (got.has_orders, got.first_is_order, got.breaks_down_events) == (True, False, True)


def test_a_range_whose_window_reaches_past_the_last_instant_has_no_upper_bound() -> None:
    assert plan("view", "click", end=LAST, window=dt.timedelta(seconds=1)).until is None
    near = LAST - dt.timedelta(days=1)
    assert plan("view", "click", end=near, window=dt.timedelta(days=1)).until == LAST
    assert plan("view", "click", end=near, window=dt.timedelta(days=2)).until is None


def test_non_starters_are_pruned_by_a_semi_join_only_when_the_window_outlasts_the_range() -> None:
    short = plan("view", "click", hours=1, window=dt.timedelta(hours=2))
    long = plan("view", "click", hours=48, window=dt.timedelta(hours=2))
    for dialect in ("postgresql", "sqlite"):
        assert read_plan(short, dialect).semi_join
        assert not read_plan(long, dialect).semi_join


def test_postgres_reads_everything_in_one_aggregate_with_read_ahead() -> None:
    read = read_plan(plan("view", "order", breakdown="platform"), "postgresql")
    assert (read.postgres, read.read_ahead, read.work_mem) == (True, True, "256MB")
    assert (read.orders_apart, read.lookup_contents, read.by_user) == (False, False, None)


def test_sqlite_reads_orders_apart_and_walks_the_user_index_when_it_covers_the_rows() -> None:
    read = read_plan(plan("view", "order"), "sqlite")
    assert (read.orders_apart, read.by_user, read.read_ahead) == (True, True, False)
    # A filter's or an event breakdown's column is not in the user index.
    assert read_plan(plan("view", "order", filters={"ad_id": "a"}), "sqlite").by_user is False
    by_platform = read_plan(plan("view", "click", breakdown="platform"), "sqlite")
    assert (by_platform.by_user, by_platform.orders_apart) == (False, False)
    assert by_platform.lookup_contents
    # Orders only: nothing to merge, no event index to choose.
    only_orders = read_plan(plan("order", "order", breakdown="platform"), "sqlite")
    assert (only_orders.orders_apart, only_orders.by_user) == (False, None)
    assert not only_orders.lookup_contents  # an order's values come from its credits
    assert not read_plan(plan("view", "click", breakdown="ad_id"), "sqlite").lookup_contents
