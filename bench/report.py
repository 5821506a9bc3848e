"""The figures table and the speed targets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: ``(value, backend)`` → met or not; None when the target does not apply to that backend.
Check = Callable[[float, str], bool | None]


@dataclass(frozen=True)
class Row:
    section: str
    key: str
    label: str
    unit: str = ""
    target: str = ""
    check: Check | None = None


def _ingest_ok(value: float, backend: str) -> bool | None:
    return value >= 0.6


def _at_most(section: str, key: str, label: str, bound: float) -> Row:
    return Row(section, key, label, "", f"≤ {bound:g}", lambda v, b: v <= bound)


def _on_postgres_at_least(floor: int) -> tuple[str, Check]:
    """A target that applies to PostgreSQL only: the value is at least ``floor``."""
    return f"PG ≥ {floor:,}", lambda v, b: v >= floor if b == "postgres" else None


def _within_a_second(section: str, key: str, label: str) -> Row:
    return Row(section, key, label, "ms", "< 1000", lambda v, b: v < 1000)


def _report_bound(section: str, key: str, label: str) -> Row:
    """The reports' target at 1M events (at 10M it is 1 s: read that run's figure so)."""
    return Row(section, key, label, "ms", "< 300", lambda v, b: v < 300)


#: The funnels timed both through the API and as raw ``windowFunnel`` (bench.anchor).
ANCHORED = ("default", "platform_filter", "content_filter", "breakdown_platform", "events_only")
#: The funnel modes timed against the plain ordered funnel (bench.runner.MODES).
MODES = (
    "strict",
    "unordered",
    "exclusion",
    "optional",
    "hold_content",
    "breakdown_last_step",
    "time_to_convert",
    "trends_week",
    "users_dropped",
)

ROWS: tuple[Row, ...] = (
    Row("ingest", "http_events_per_s", "ingest HTTP", "events/s", *_on_postgres_at_least(60_000)),
    Row("ingest", "baseline_rows_per_s", "ingest baseline (plain bulk insert)", "rows/s"),
    Row(
        "ingest", "ratio_http_to_baseline", "ingest ratio HTTP / baseline", "", "≥ 0.60", _ingest_ok
    ),
    Row("ingest", "batch_p99_ms", "ingest batch latency p99", "ms"),
    Row("ingest", "catch_up_ms", "analytic store catch-up after ingest", "ms"),
    Row("ingest", "replicated_events_per_s", "ingest HTTP + replication", "events/s"),
    Row(
        "ingest",
        "ratio_replicated_to_baseline",
        "ingest ratio (HTTP + replication) / baseline",
        "",
        "≥ 0.80",
        lambda v, b: v >= 0.8,
    ),
    *(
        row
        for rate in ("100", "200", "400")
        for row in (
            Row("orders", f"open_{rate}_answered_per_s", f"orders open loop {rate}/s offered"),
            Row("orders", f"open_{rate}_p50_ms", f"orders open loop {rate}/s p50", "ms"),
            Row(
                "orders",
                f"open_{rate}_p99_ms",
                f"orders open loop {rate}/s p99",
                "ms",
                *(("< 20", lambda v, b: v < 20) if rate == "200" else ()),
            ),
        )
    ),
    Row(
        "orders",
        "closed_loop_per_s",
        "orders closed loop max",
        "orders/s",
        *_on_postgres_at_least(600),
    ),
    Row("orders", "closed_loop_service_cpu_ms_per_order", "orders service CPU per order", "ms"),
    Row("orders", "closed_loop_p50_ms", "orders closed loop p50", "ms"),
    Row("orders", "closed_loop_p99_ms", "orders closed loop p99", "ms"),
    _within_a_second("funnel", "default_ms", "funnel default 4 steps (exact)"),
    _within_a_second("funnel", "platform_filter_ms", "funnel platform filter"),
    _within_a_second("funnel", "content_filter_ms", "funnel content filter"),
    Row("funnel", "breakdown_platform_ms", "funnel breakdown by platform", "ms"),
    Row("funnel", "greedy_sql_ms", "funnel greedy SQL baseline", "ms"),
    _at_most("funnel", "ratio_exact_to_greedy", "funnel ratio exact / greedy", 2),
    Row("funnel", "events_only_ms", "funnel impression → view → click (events only)", "ms"),
    _at_most("funnel", "ratio_breakdown_to_plain", "funnel ratio breakdown / plain", 2),
    *(
        Row("funnel", f"raw_clickhouse_{name}_ms", f"raw ClickHouse windowFunnel {name}", "ms")
        for name in ANCHORED
    ),
    *(
        _at_most(
            "funnel", f"ratio_api_to_raw_{name}", f"funnel ratio API / raw ClickHouse {name}", 1.5
        )
        for name in ANCHORED
    ),
    *(Row("funnel", f"mode_{name}_ms", f"funnel mode {name}", "ms") for name in MODES),
    *(
        _at_most("funnel", f"ratio_mode_{name}_to_plain", f"funnel ratio {name} / plain", 2)
        for name in MODES
    ),
    _report_bound("reports", "ads_ms", "report ads"),
    _report_bound("reports", "contents_ms", "report contents"),
    _report_bound("reports", "timeseries_ms", "report timeseries"),
)


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 1000):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def verdict(row: Row, value: Any, backend: str) -> str:
    if row.check is None:
        return ""
    if isinstance(value, str) or value is None:
        return "–"
    met = row.check(float(value), backend)
    if met is None:
        return ""
    return "ok" if met else "MISS"


def targets(medians: Mapping[str, Mapping[str, Any]], backend: str) -> dict[str, str]:
    """``{metric: "ok" | "MISS" | "–"}`` for every metric with a target."""
    out: dict[str, str] = {}
    for row in ROWS:
        if row.check is not None:
            value = medians.get(row.section, {}).get(row.key)
            mark = verdict(row, value, backend)
            if mark:
                out[f"{row.section}.{row.key}"] = mark
    return out


def table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One column per backend (its medians), the target, and ok/MISS marks."""
    backends = list(results)
    header = ["metric", *[f"{b}" for b in backends], "target"]
    body: list[list[str]] = []
    for row in ROWS:
        cells = [f"{row.label}" + (f" [{row.unit}]" if row.unit else "")]
        for backend in backends:
            value = results[backend]["median"].get(row.section, {}).get(row.key)
            mark = verdict(row, value, backend)
            text = "–" if value is None else _fmt(value)
            cells.append(f"{text} {mark}".rstrip() if mark and mark != "–" else text)
        cells.append(row.target)
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    for backend in backends:
        meta = results[backend]
        lines.append(
            f"{backend}: {meta.get('runs_completed', 0)} run(s), load average "
            f"{meta.get('load_average_start')} → {meta.get('load_average_end')}, baseline "
            f"{meta.get('info', {}).get('baseline_method', '?')}"
        )
    return "\n".join(lines)
