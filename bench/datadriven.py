"""Data-driven attribution at scale: ``python -m bench.datadriven [--users N] [--events N]``.

A synthetic month (default 1M touches of 100k users over 300 contents, Zipf-skewed, about
3 % of users buying) goes through the same pure code the endpoint runs: path building, then
Markov order 1 and Shapley. The baseline, measured in the same run, is sorting the same
touches by (user, time, event id), the least any path builder must do; figures are given
as seconds and as multiples of that baseline (medians of ``--runs``), since the machines
are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from services.attribution.analytics import store
from services.attribution.analytics.paths import store_paths
from services.attribution.datadriven.markov import markov
from services.attribution.datadriven.paths import PaidOrder, Paths, PathTouch, build_paths
from services.attribution.datadriven.shapley import shapley

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
MONTH = dt.timedelta(days=30)


def synthetic(
    users: int, events: int, contents: int, seed: int
) -> tuple[list[PathTouch], list[PaidOrder]]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(contents)]
    names = [f"v{i}" for i in range(contents)]
    picks = rng.choices(names, weights=weights, k=events)
    touches: list[PathTouch] = []
    orders: list[PaidOrder] = []
    for index, channel in enumerate(picks):
        user = f"u{rng.randrange(users)}"
        at = T0 + dt.timedelta(seconds=rng.randrange(int(MONTH.total_seconds())))
        touches.append(PathTouch(user, at, f"e{index}", channel))
    for buyer in range(users):
        if rng.random() < 0.03:
            at = T0 + dt.timedelta(seconds=rng.randrange(int(MONTH.total_seconds())))
            orders.append(PaidOrder(f"o{buyer}", f"u{buyer}", at, Decimal(rng.randrange(1, 500))))
    return touches, orders


def timed(label: str, work, baseline: float | None = None, runs: int = 1):  # type: ignore[no-untyped-def]
    """Run ``work`` ``runs`` times; print and return the median (noisy machines)."""
    seconds_each = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        seconds_each.append(time.perf_counter() - started)
    seconds = statistics.median(seconds_each)
    ratio = f"  ({seconds / baseline:.2f}x the baseline)" if baseline else ""
    print(f"{label:<34} {seconds:7.3f} s{ratio}")
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--contents", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="median of this many runs")
    parser.add_argument(
        "--no-store", action="store_true", help="skip the analytic store (chdb) section"
    )
    args = parser.parse_args()
    touches, orders = synthetic(args.users, args.events, args.contents, args.seed)
    print(f"{len(touches):,} touches, {len(orders):,} orders, {args.contents} contents")
    _, base = timed(
        "baseline: sort touches",
        lambda: sorted(touches, key=lambda t: (t.user_id, t.occurred_at, t.event_id)),
        runs=args.runs,
    )
    window = dt.timedelta(days=7)
    paths, build = timed(
        "build paths",
        lambda: build_paths(touches, orders, range_from=T0, range_to=T0 + MONTH, window=window),
        base,
        args.runs,
    )
    print(f"  {len(paths.counts):,} distinct paths, {paths.converting:,} converting")
    _, m = timed("markov order 1", lambda: markov(paths.counts, 1), base, args.runs)
    _, s = timed("shapley", lambda: shapley(paths.counts), base, args.runs)
    print(
        f"{'paths + markov':<34} {build + m:7.3f} s ({(build + m) / base:.2f}x the baseline); "
        f"paths + shapley {build + s:.3f} s ({(build + s) / base:.2f}x)"
    )
    if not args.no_store:
        in_store(touches, orders, paths, base, args.runs)


def in_store(
    touches: list[PathTouch], orders: list[PaidOrder], expected: Paths, base: float, runs: int
) -> None:
    """The same paths from the embedded analytic store, as the endpoint builds them there."""
    with tempfile.TemporaryDirectory(prefix="clipfunnel-bench-") as folder:
        analytic = store.embedded(Path(folder), "bench_datadriven")
        analytic.migrate()
        started = time.perf_counter()
        for first in range(0, len(touches), 200_000):
            analytic.insert_rows("events", [_row(t) for t in touches[first : first + 200_000]])
        print(f"{'(loaded into chdb in':<34} {time.perf_counter() - started:7.3f} s)")
        paths, build = timed(
            "build paths in the analytic store",
            lambda: asyncio.run(
                store_paths(
                    analytic,
                    "bench",
                    "content_id",
                    orders,
                    range_from=T0,
                    range_to=T0 + MONTH,
                    window=dt.timedelta(days=7),
                )
            ),
            base,
            runs,
        )
        assert paths.counts == expected.counts, "the store's paths differ from Python's"
        _, m = timed("markov order 1", lambda: markov(paths.counts, 1), base, runs)
        _, s = timed("shapley", lambda: shapley(paths.counts), base, runs)
        print(
            f"{'store paths + markov':<34} {build + m:7.3f} s ({(build + m) / base:.2f}x the "
            f"baseline); store paths + shapley {build + s:.3f} s ({(build + s) / base:.2f}x)"
        )


def _row(touch: PathTouch) -> dict[str, object]:
    return {
        "tenant_id": "bench",
        "user_id": touch.user_id,
        "t": touch.occurred_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "event_id": touch.event_id,
        "type": "view",
        "content_id": touch.channel,
        "product_id": None,
        "ad_id": None,
        "platform": None,
        "seq": 1,
    }


if __name__ == "__main__":
    main()
