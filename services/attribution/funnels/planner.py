"""What a funnel asks, and how its rows are read on each database: pure, no SQL, no I/O.

:class:`FunnelPlan` is the request every funnel source answers (validated, filters merged,
instants in UTC). :class:`ReadPlan` is how the SQL source reads it on one database: which
rows are pruned early, which index the planner is steered to, whether order rows and
read-model values are read apart, and in which chunks the rows stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from services.attribution.funnels.schemas import FunnelQuery

ORDER_STEP = "order"
#: Dimensions that need the catalog read model (content → account).
CONTENT_KEYS = frozenset({"account_id", "content_kind", "platform"})
#: Marks a content id standing for its account's platform (platforms are plain words).
CONTENT_MARK = "#"
#: The largest instant a datetime holds: a range reaching past it has no upper bound.
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class StepPlan:
    type: str
    filters: Mapping[str, str]  # this step's own filters (the global ones come on top)
    optional: bool = False  # a chain may skip it


@dataclass(frozen=True, slots=True)
class ExclusionPlan:
    type: str
    filters: Mapping[str, str]  # its own filters (the global ones come on top)
    from_step: int  # 0-based
    to_step: int


@dataclass(frozen=True, slots=True)
class FunnelPlan:
    """One funnel request: validated, merged, in UTC."""

    tenant_id: str
    steps: tuple[StepPlan, ...]
    filters: Mapping[str, str]  # global: every step
    start: dt.datetime  # first step in [start, end)
    end: dt.datetime
    window: dt.timedelta  # longest time from the first step to the last, inclusive
    breakdown: str | None
    order: str = "ordered"  # ordered | strict | unordered
    exclusions: tuple[ExclusionPlan, ...] = ()
    hold: tuple[str, ...] = ()  # dimensions every item of a chain shares
    attribution: str = "first_step"  # which item's value places a user in a breakdown
    attribution_step: int = 0  # the step of `step` attribution

    @property
    def plain(self) -> bool:
        """The ordered funnel of required steps, without exclusions, held dimensions or a
        breakdown other than by the first step (the streaming engine's fast path)."""
        return (
            self.order == "ordered"
            and not self.exclusions
            and not self.hold
            and self.attribution == "first_step"
            and not any(step.optional for step in self.steps)
        )

    @property
    def stream_steps(self) -> list[StepPlan]:
        """The steps, then the exclusions as further steps: an item's stream mask has bit
        ``k`` for step ``k + 1`` and bit ``n + i`` for exclusion ``i``."""
        return [*self.steps, *(StepPlan(x.type, x.filters) for x in self.exclusions)]

    @property
    def optional_mask(self) -> int:
        """Bit ``k`` when step ``k + 1`` is optional."""
        return sum(1 << k for k, step in enumerate(self.steps) if step.optional)

    def needed_steps(self, least_level: int) -> int:
        """Bit ``k`` for each required step ``k + 1`` among the first ``least_level``: the
        steps a user must have an item of to reach ``least_level`` in an ordered or strict
        funnel (an unordered one needs ``least_level`` different steps, any of them)."""
        return sum(1 << k for k in range(least_level) if not self.steps[k].optional)

    @property
    def until(self) -> dt.datetime | None:
        """``end + window``: no row at or after it can be in a chain (None: no such instant).

        A range ending within a window of the year 9999's end reaches past what a datetime
        holds; every stored row lies before that, so the bound is simply left out.
        """
        if _LATEST - self.end < self.window:
            return None
        return self.end + self.window

    @property
    def window_us(self) -> int:
        return self.window // dt.timedelta(microseconds=1)

    @property
    def first_is_order(self) -> bool:
        return self.steps[0].type == ORDER_STEP

    @property
    def event_types(self) -> list[str]:
        return sorted({s.type for s in self.steps if s.type != ORDER_STEP})

    @property
    def has_orders(self) -> bool:
        return any(s.type == ORDER_STEP for s in self.steps)

    @property
    def breaks_down_events(self) -> bool:
        """The breakdown is a value of step 1's *event* (an order's come from its credits)."""
        return self.breakdown is not None and not self.first_is_order


def plan_funnel(tenant_id: str, query: FunnelQuery) -> FunnelPlan:
    return FunnelPlan(
        tenant_id=tenant_id,
        steps=tuple(
            StepPlan(step.type, step.filters.given() if step.filters else {}, step.optional)
            for step in query.steps
        ),
        filters=query.filters.given() if query.filters else {},
        start=query.from_,
        end=query.to,
        window=dt.timedelta(seconds=query.window_seconds),
        breakdown=query.breakdown,
        order=query.order,
        exclusions=tuple(
            ExclusionPlan(x.type, x.filters.given() if x.filters else {}, x.from_step, x.to_step)
            for x in query.exclusions
        ),
        hold=tuple(query.hold_constant),
        attribution=query.breakdown_attribution,
        attribution_step=query.breakdown_step or 0,
    )


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """How the SQL source reads one funnel's rows on one database."""

    postgres: bool  # else SQLite
    #: Rows of users who cannot start a chain are dropped by ``user_id IN (starters)``.
    semi_join: bool
    #: SQLite: the order rows are read on their own and merged per user by the reader.
    orders_apart: bool
    #: SQLite, the event rows' index (see ``queries.event_rows``): True walks the user
    #: index, False keeps away from it, None leaves the choice to the database.
    by_user: bool | None
    #: SQLite: read-model values of a breakdown are looked up per content by the reader.
    lookup_contents: bool
    #: Users per chunk streamed from the server-side cursor.
    chunk_size: int
    #: The next chunk is asked for before the current one is evaluated.
    read_ahead: bool
    #: PostgreSQL's memory for the per-user aggregate, for the read's transaction only.
    work_mem: str | None


def prune_with_semi_join(plan: FunnelPlan) -> bool:
    """Whether rows of users who cannot start a chain are also left out by a semi-join.

    ``HAVING`` on the per-user aggregate leaves them out anyway (the result is the same
    either way). The semi-join (``user_id IN (starters)``) drops their rows before
    grouping but costs another scan: worth it only when the first-step range is shorter
    than the window, i.e. when many users read have no start.
    """
    return plan.end - plan.start < plan.window


def read_plan(plan: FunnelPlan, dialect: str) -> ReadPlan:
    postgres = dialect == "postgresql"
    # PostgreSQL hash-aggregates events and orders together and hash-joins the read model
    # for next to nothing. SQLite groups by user without a sort when it walks the user
    # index, which covers the event rows unless a filter's or the breakdown's column is
    # needed too; a UNION ALL with the (few) order rows would need the sort, so they are
    # read apart and merged per user.
    sqlite_events = not postgres and bool(plan.event_types)
    filtered = bool(plan.filters) or any(
        step.filters for step in plan.steps if step.type != ORDER_STEP
    )
    return ReadPlan(
        postgres=postgres,
        semi_join=prune_with_semi_join(plan),
        orders_apart=sqlite_events and plan.has_orders,
        by_user=not (filtered or plan.breaks_down_events) if sqlite_events else None,
        lookup_contents=(
            not postgres and plan.breaks_down_events and plan.breakdown in CONTENT_KEYS
        ),
        # The server computes the next chunk while this process evaluates one. SQLite runs
        # in a thread of this process, which needs the GIL for every row it hands over:
        # running it beside the evaluation measured slower than in turns, in large chunks.
        chunk_size=2_000 if postgres else 20_000,
        read_ahead=postgres,
        # The per-user aggregate holds every user's arrays at once: in memory, not spilled.
        work_mem="256MB" if postgres else None,
    )
