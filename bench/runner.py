"""One benchmark run on one database backend, and the median over several runs."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import statistics
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import anchor, baseline, orders_load, workloads
from bench import orders as orders_bench
from bench.infra import (
    Backend,
    BenchError,
    CpuMeter,
    Databases,
    Profiler,
    Role,
    ServiceProcess,
    attribution_service,
    catalog_service,
)
from bench.profiling import summarise, summarise_pstats, summarise_sql
from services.demo import Month
from services.demo.post import Api, event_batches, prepare_attribution, put_catalog
from services.demo.synthetic import PLATFORMS
from services.demo.timeline import to_us
from services.demo.wire import iso
from services.launcher import migrate
from shared.auth import mint_token

TENANT = "bench"
#: The data set's month ends here: fixed and in the past, so runs on any day post identical bodies.
END = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
SCOPES = ("admin", "events:write", "orders:write", "reports:read")
FUNNEL_WINDOW_S = 7 * 86_400

Value = float | int | str
Section = dict[str, Value]
SECTIONS = ("ingest", "orders", "funnel", "reports")


@dataclass(frozen=True)
class Config:
    events: int
    runs: int
    quick: bool
    workers: int = 1
    ingest_concurrency: int = 6
    order_rate: float = 200.0  # the open-loop rate the report's target row reads
    order_rates: tuple[float, ...] = orders_bench.RATES  # each measured in the open loop
    open_loop_seconds: float = 15.0  # per rate
    closed_loop_concurrency: int = 8
    closed_loop_max: int = 3000
    query_reps: int = 3
    seed: int = 42
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    pg_baseline: str = "both"  # unnest | copy | both
    profile_dir: Path | None = None
    py_spy: bool = False
    workdir: Path = Path("/tmp")
    keep: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, workdir: Path) -> Config:
        """The options named like the fields; ``--quick`` also shortens the phases."""
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        if args.quick:
            given.update(open_loop_seconds=2.0, closed_loop_max=500, query_reps=1)
        return cls(**{**given, "workdir": workdir})


@dataclass
class Prepared:
    """Request bodies built once per invocation (outside every timed region)."""

    data: Month
    event_bodies: list[bytes]
    open_loop: list[bytes]
    closed_loop: list[bytes]
    after_sales: list[tuple[str, bytes]]
    baseline_rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    @classmethod
    def build(cls, data: Month, cfg: Config) -> Prepared:
        orders = [orjson.dumps(o.body()) for o in data.orders]
        n_open = min(int(cfg.order_rate * cfg.open_loop_seconds), len(orders) // 2)
        after: list[tuple[str, bytes]] = []
        for order in data.orders:
            if order.cancelled_us is not None:
                after.append(("/v1/orders", orjson.dumps(order.body("cancelled"))))
            if order.refund is not None:
                path = f"/v1/orders/{order.order_id}/refunds"
                after.append((path, orjson.dumps(order.refund_body())))
        return cls(
            data=data,
            event_bodies=event_batches(data.events),
            open_loop=orders[:n_open],
            closed_loop=orders[n_open : n_open + cfg.closed_loop_max],
            after_sales=after,
        )

    def rows_for(self, backend: Backend) -> list[tuple[Any, ...]]:
        if backend not in self.baseline_rows:
            received = dt.datetime.now(dt.UTC)
            if backend == "sqlite":
                rows = baseline.sqlite_rows(TENANT, self.data.events, to_us(received))
            else:
                rows = baseline.pg_rows(TENANT, self.data.events, received)
            self.baseline_rows[backend] = rows
        return self.baseline_rows[backend]


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class CatalogHost:
    """The catalog service and its database, loaded once per backend and shared by its runs
    (the catalog is not what is measured; each run gets a fresh attribution database)."""

    dbs: Databases
    service: ServiceProcess
    secret: str
    puts: int = 0

    async def stop(self, keep: bool) -> None:
        self.service.stop()
        if not keep:
            await self.dbs.drop_all()


async def start_catalog(backend: Backend, cfg: Config, prep: Prepared) -> CatalogHost:
    workdir = cfg.workdir / f"{backend}-catalog"
    workdir.mkdir(parents=True, exist_ok=True)
    dbs = Databases(backend, workdir, cfg.pg_admin_url)
    host = CatalogHost(dbs, catalog_service(dbs, secrets.token_urlsafe(32), workdir), "")
    host.secret = host.service.env["CLIPFUNNEL_SECRET"]
    try:
        await dbs.create("catalog")
        await asyncio.to_thread(migrate, "catalog", dbs.url("catalog"))
        host.service.start()
        await asyncio.to_thread(host.service.wait_ready)
        token = mint_token(host.secret, TENANT, ("catalog:write",), ttl_seconds=86_400)
        started = time.perf_counter()
        async with workloads.client(host.service.url, token) as catalog:
            host.puts = await put_catalog(Api(catalog, "catalog"), prep.data.world, 8)
        _say(f"catalog: {host.puts:,} PUTs in {time.perf_counter() - started:.1f}s")
    except BaseException:
        await host.stop(cfg.keep)
        raise
    return host


async def one_run(
    backend: Backend,
    cfg: Config,
    prep: Prepared,
    host: CatalogHost,
    index: int,
    *,
    profiled: bool = False,
) -> dict[str, Any]:
    """Fresh databases and attribution service, then every measurement once.

    ``profiled``: the service runs under cProfile during ingest and orders (its figures are
    then distorted by the profiler, so such a run is kept out of the medians)."""
    workdir = cfg.workdir / f"{backend}-run{index + 1}"
    workdir.mkdir(parents=True, exist_ok=True)
    dbs = Databases(backend, workdir, cfg.pg_admin_url)
    service: ServiceProcess | None = None
    info: dict[str, Any] = {}
    result: dict[str, Any] = {"load_average_start": _load(), "info": info}
    profile = cfg.profile_dir if profiled else None
    try:
        for role in ("attribution", "baseline"):
            await dbs.create(role)
            await asyncio.to_thread(migrate, "attribution", dbs.url(role))
        service = attribution_service(
            dbs,
            host.secret,
            workdir,
            host.service.url,
            cfg.workers,
            f"run{index + 1}",
            profile=profile is not None,
        )
        service.start()
        await asyncio.to_thread(service.wait_ready)
        token = mint_token(host.secret, TENANT, SCOPES, ttl_seconds=7 * 86_400)
        async with workloads.client(service.url, token) as attribution:
            seq = await prepare_attribution(Api(attribution, "attribution"))
            _say(f"  attribution ready, catalog synced to seq {seq}")
            run = Run(backend, cfg, prep, dbs, service, attribution, profile, info)
            result["ingest"] = await _ingest(run)
            result["orders"] = await _orders(run)
            if backend == "postgres":
                await baseline.pg_analyze(dbs.dsn("attribution"))
            result["funnel"] = await _funnels(run)
            result["reports"] = await _reports(run)
        if not service.alive():
            raise RuntimeError(f"attribution died during the run; {service.tail()}")
    except Exception as exc:
        tail = service.tail() if service is not None else ""
        raise BenchError(f"{type(exc).__name__}: {exc}; {tail}") from exc
    finally:
        if service is not None:
            service.stop()
        if not cfg.keep:
            await dbs.drop_all()
    result["load_average_end"] = _load()
    return result


@dataclass
class Run:
    """What the measurements of one run share."""

    backend: Backend
    cfg: Config
    prep: Prepared
    dbs: Databases
    service: ServiceProcess
    attribution: httpx.AsyncClient
    profile: Path | None  # cProfile the service into this folder
    info: dict[str, Any]  # facts worth keeping beside the figures


async def _ingest(run: Run) -> Section:
    backend, cfg, prep, dbs, service = run.backend, run.cfg, run.prep, run.dbs, run.service
    attribution, profile, info = run.attribution, run.profile, run.info
    profiler = _profiler(service, cfg, profile, backend, "ingest")
    meter = _meter(service, dbs, backend, "attribution")
    stats = await workloads.ingest(attribution, prep.event_bodies, cfg.ingest_concurrency)
    # A funnel over event steps is read from the analytic store, which first copies what it
    # still misses: ingest plus this catch-up is ingest with replication.
    caught_up = await workloads.timed_query(
        attribution, "POST", "/v1/funnels", 1, body=_catch_up_body(prep)
    )
    service_cpu, db_cpu = meter.stop()
    await _stop_profiler(profiler, len(prep.event_bodies), "1,000-event batch")
    _say(
        f"  ingest HTTP: {stats.received:,} events in {stats.seconds:.1f}s = "
        f"{stats.events_per_s:,.0f}/s (accepted {stats.accepted:,}, duplicates "
        f"{stats.duplicates:,}, rejected {stats.rejected})"
    )
    if stats.rejected:
        _say(f"  warning: rejected events, e.g. {stats.first_rejections[:2]}")
    rows = prep.rows_for(backend)
    results: list[baseline.InsertResult] = []
    if backend == "sqlite":
        results.append(
            await asyncio.to_thread(baseline.sqlite_bulk_insert, dbs.path("baseline"), rows)
        )
    else:
        methods = ("unnest", "copy") if cfg.pg_baseline == "both" else (cfg.pg_baseline,)
        for method in methods:
            results.append(await baseline.pg_bulk_insert(dbs.dsn("baseline"), rows, method))
    for r in results:
        _say(f"  baseline {r.method}: {r.rows:,} rows in {r.seconds:.1f}s = {r.rows_per_s:,.0f}/s")
    best = max(results, key=lambda r: r.rows_per_s)
    total_cpu = service_cpu + (db_cpu or 0.0)
    replicated_s = stats.seconds + caught_up.seconds[0] if caught_up.seconds else None
    section: Section = {
        "http_events_per_s": round(stats.events_per_s, 1),
        "replicated_events_per_s": (
            round(stats.received / replicated_s, 1) if replicated_s else "n/a (no catch-up read)"
        ),
        "ratio_replicated_to_baseline": (
            round(stats.received / replicated_s / best.rows_per_s, 3)
            if replicated_s
            else "n/a (no catch-up read)"
        ),
        "catch_up_ms": _ms(caught_up.median_ms),
        "baseline_rows_per_s": round(best.rows_per_s, 1),
        "ratio_http_to_baseline": round(stats.events_per_s / best.rows_per_s, 3),
        "http_seconds": round(stats.seconds, 2),
        "baseline_seconds": round(best.seconds, 2),
        "batch_p50_ms": round(orders_load.percentile(stats.batch_latencies, 50) * 1000, 1),
        "batch_p99_ms": round(orders_load.percentile(stats.batch_latencies, 99) * 1000, 1),
        "service_cpu_s": round(service_cpu, 2),
        "db_cpu_s": round(db_cpu, 2) if db_cpu is not None else "n/a (in-process SQLite)",
        "cpu_us_per_event": round(total_cpu / max(1, stats.received) * 1e6, 1),
        "baseline_cpu_us_per_row": (
            round(best.cpu_seconds / max(1, best.rows) * 1e6, 1)
            if best.cpu_seconds is not None
            else "n/a"
        ),
        "events_sent": stats.received,
        "accepted": stats.accepted,
        "duplicates": stats.duplicates,
        "rejected": stats.rejected,
        "failed_batches": stats.failed_batches,
        "concurrency": cfg.ingest_concurrency,
    }
    info["baseline_method"] = best.method
    for r in results:
        key = "unnest" if "unnest" in r.method else "copy" if "COPY" in r.method else "sqlite"
        section[f"baseline_{key}_rows_per_s"] = round(r.rows_per_s, 1)
    return section


async def _orders(run: Run) -> Section:
    """The orders phases, driven by ``bench.orders_load`` in processes of their own."""
    backend, cfg, prep, dbs, service = run.backend, run.cfg, run.prep, run.dbs, run.service
    attribution, profile = run.attribution, run.profile
    token = attribution.headers["Authorization"].removeprefix("Bearer ")
    templates = orders_bench.write_templates(prep.data, dbs.workdir / "orders.jsonl")
    phases = orders_bench.OrdersConfig(
        rates=cfg.order_rates,
        seconds=cfg.open_loop_seconds,
        concurrency=cfg.closed_loop_concurrency,
        closed_orders=cfg.closed_loop_max,
    )
    section = await orders_bench.measure(
        service,
        token,
        templates,
        phases,
        db_name=dbs.name("attribution") if backend == "postgres" else None,
        say=_say,
        profile=profile / f"{backend}-orders.prof" if profile is not None else None,
    )
    after = await workloads.post_after_sales(attribution, prep.after_sales)
    _say(
        f"  cancellations and refunds: {after.requests} → {after.per_s:.0f}/s, "
        f"p50 {after.ms(50):.1f} ms, statuses {after.statuses}"
    )
    at = orders_bench.rate_key(cfg.order_rate)
    if f"open_{at}_p99_ms" in section:  # the rate the report's target row reads
        section["open_loop_offered_per_s"] = cfg.order_rate
        section["open_loop_achieved_per_s"] = section[f"open_{at}_answered_per_s"]
        section["open_loop_p50_ms"] = section[f"open_{at}_p50_ms"]
        section["open_loop_p99_ms"] = section[f"open_{at}_p99_ms"]
    section["after_sales_requests"] = after.requests
    section["after_sales_p50_ms"] = round(after.ms(50), 2)
    section["after_sales_errors"] = after.errors
    return section


def _catch_up_body(prep: Prepared) -> dict[str, Any]:
    """A small funnel over event steps (served by the analytic store after a catch-up)."""
    data = prep.data
    return {
        "from": iso(data.start_us),
        "to": iso(data.start_us + 1_000_000),
        "steps": [{"type": "impression"}, {"type": "view"}],
    }


#: The bench funnels, as the API and the anchor take them (None: the API's default steps).
FUNNELS: dict[str, tuple[tuple[str, ...] | None, str | None]] = {
    "default": (None, None),
    "platform_filter": (None, None),
    "content_filter": (None, None),
    "breakdown_platform": (None, "platform"),
    "events_only": (("impression", "view", "click"), None),
}
DEFAULT_STEPS = ("impression", "view", "click", "order")
#: The funnel modes, each timed against the plain ordered funnel (``default``):
#: name → (path under /v1/funnels, what the body adds to the whole range).
MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "strict": ("", {"order": "strict"}),
    "unordered": ("", {"order": "unordered"}),
    "exclusion": ("", {"exclusions": [{"type": "like", "from_step": 1, "to_step": 3}]}),
    "optional": (
        "",
        {
            "steps": [
                {"type": "impression"},
                {"type": "view", "optional": True},
                {"type": "click"},
                {"type": "order"},
            ]
        },
    ),
    "hold_content": ("", {"hold_constant": ["content_id"]}),
    "breakdown_last_step": ("", {"breakdown": "platform", "breakdown_attribution": "last_step"}),
    "time_to_convert": ("/time-to-convert", {}),
    "trends_week": ("/trends", {"interval": "week"}),
    "users_dropped": ("/users", {"step": 3, "status": "dropped", "limit": 10_000}),
}


def _users(answer: Any) -> list[int] | None:
    if isinstance(answer, dict) and isinstance(answer.get("steps"), list):
        return [int(step.get("users", 0)) for step in answer["steps"]]
    return None


async def _funnels(run: Run) -> Section:
    backend, cfg, data, dbs = run.backend, run.cfg, run.prep.data, run.dbs
    attribution, info = run.attribution, run.info
    whole = {"from": iso(data.start_us), "to": iso(data.end_us)}
    queries: dict[str, dict[str, Any]] = {
        "default": whole,
        "platform_filter": {**whole, "filters": {"platform": PLATFORMS[0]}},
        "content_filter": {**whole, "filters": {"content_id": data.world.contents[0].id}},
        "breakdown_platform": {**whole, "breakdown": "platform"},
        "events_only": {**whole, "steps": [{"type": t} for t in FUNNELS["events_only"][0] or ()]},
    }
    section: Section = {}
    answers: dict[str, Any] = {}
    for name, body in queries.items():
        timing = await workloads.timed_query(
            attribution, "POST", "/v1/funnels", cfg.query_reps, body=body
        )
        section[f"{name}_ms"] = _ms(timing.median_ms)
        answers[name] = timing.answer
    if backend == "sqlite":
        greedy = await asyncio.to_thread(
            baseline.sqlite_greedy_funnel,
            dbs.path("attribution"),
            TENANT,
            data.start,
            data.end,
            FUNNEL_WINDOW_S,
            cfg.query_reps,
        )
    else:
        greedy = await baseline.pg_greedy_funnel(
            dbs.dsn("attribution"), TENANT, data.start, data.end, FUNNEL_WINDOW_S, cfg.query_reps
        )
    greedy_ms = statistics.median(greedy.seconds) * 1000
    section["greedy_sql_ms"] = round(greedy_ms, 1)
    default = section["default_ms"]
    section["ratio_exact_to_greedy"] = (
        round(default / greedy_ms, 3) if isinstance(default, float) and greedy_ms > 0 else "n/a"
    )
    exact_users = _users(answers["default"])
    info["funnel_users_per_step_exact"] = exact_users
    info["funnel_users_per_step_greedy"] = greedy.users
    plain = section["default_ms"]
    broken = section["breakdown_platform_ms"]
    section["ratio_breakdown_to_plain"] = (
        round(broken / plain, 3)
        if isinstance(broken, float) and isinstance(plain, float) and plain > 0
        else "n/a"
    )
    for name, (path, extra) in MODES.items():
        timing = await workloads.timed_query(
            attribution, "POST", f"/v1/funnels{path}", cfg.query_reps, body={**whole, **extra}
        )
        took = section[f"mode_{name}_ms"] = _ms(timing.median_ms)
        section[f"ratio_mode_{name}_to_plain"] = (
            round(took / plain, 3)
            if isinstance(took, float) and isinstance(plain, float) and plain > 0
            else "n/a"
        )
    raw = await _anchor(run, queries, answers)
    for name in queries:
        api, anchored = section[f"{name}_ms"], raw[f"raw_clickhouse_{name}_ms"]
        section[f"ratio_api_to_raw_{name}"] = (
            round(api / anchored, 3)
            if isinstance(api, float) and isinstance(anchored, float) and anchored > 0
            else "n/a"
        )
    section.update(raw)
    _say(
        "  funnels: "
        + ", ".join(
            f"{k} {v if isinstance(v, str) else f'{v:.0f} ms'}"
            for k, v in section.items()
            if k.endswith("_ms")
        )
        + f"; users per step exact {exact_users} vs greedy {greedy.users}"
    )
    return section


async def _anchor(run: Run, queries: dict[str, dict[str, Any]], answers: dict[str, Any]) -> Section:
    """The same funnels as raw ``windowFunnel`` on the run's rows loaded into chdb."""
    cfg, data, info = run.cfg, run.prep.data, run.info
    started = time.perf_counter()
    docs = await anchor.export_rows(run.dbs.url("attribution"), TENANT)
    raw = await asyncio.to_thread(anchor.Anchor, docs)
    _say(f"  anchor: {raw.rows:,} rows loaded into chdb in {time.perf_counter() - started:.1f}s")
    section: Section = {}
    try:
        for name, body in queries.items():
            steps, breakdown = FUNNELS[name]
            funnel = anchor.RawFunnel(steps or DEFAULT_STEPS, body.get("filters", {}), breakdown)
            timing = await asyncio.to_thread(
                raw.time_funnel, funnel, data.start, data.end, FUNNEL_WINDOW_S, cfg.query_reps
            )
            section[f"raw_clickhouse_{name}_ms"] = round(timing.median_ms, 1)
            if timing.users:
                info[f"funnel_users_per_step_raw_{name}"] = timing.users
                info[f"funnel_users_per_step_api_{name}"] = _users(answers.get(name))
    finally:
        raw.close()
    _say(
        "  raw ClickHouse: "
        + ", ".join(f"{k.removeprefix('raw_clickhouse_')} {v:.0f} ms" for k, v in section.items())
    )
    return section


async def _reports(run: Run) -> Section:
    cfg, data, attribution = run.cfg, run.prep.data, run.attribution
    whole = {"from": iso(data.start_us), "to": iso(data.end_us)}
    queries = {
        "ads": ("/v1/reports/ads", whole),
        "contents": ("/v1/reports/contents", whole),
        "timeseries": (
            "/v1/reports/timeseries",
            {**whole, "metric": "impressions", "interval": "day"},
        ),
    }
    section: Section = {}
    for name, (path, params) in queries.items():
        timing = await workloads.timed_query(
            attribution, "GET", path, cfg.query_reps, params=params
        )
        section[f"{name}_ms"] = _ms(timing.median_ms)
    _say(
        "  reports: "
        + ", ".join(f"{k} {v if isinstance(v, str) else f'{v:.0f} ms'}" for k, v in section.items())
    )
    return section


def _ms(value: float | str) -> Value:
    return value if isinstance(value, str) else round(value, 1)


def _meter(
    service: ServiceProcess | None, dbs: Databases, backend: Backend, role: Role
) -> CpuMeter:
    meter = CpuMeter(
        service.pid if service is not None else None,
        dbs.name(role) if backend == "postgres" else None,
    )
    meter.start()
    return meter


@dataclass
class PhaseProfile:
    """cProfile inside the service (and optionally py-spy outside it) for one phase."""

    service: ServiceProcess
    target: Path
    spy: Profiler | None = None

    async def stop(self, requests: int, unit: str) -> None:
        if self.spy is not None:
            output = self.spy.stop()
            if output is not None:
                output.with_suffix(".summary.txt").write_text(summarise(output))
                _say(f"  py-spy (wall clock): {output}")
        written = await self.service.profile_off(self.target)
        if written is None:
            _say("  profile: the service wrote no stats (started with --workers > 1?)")
            return
        summary = written.with_suffix(".summary.txt")
        text = summarise_pstats(written)
        sql = written.with_suffix(".sql.json")
        if sql.exists():
            per, table = summarise_sql(sql, requests)
            text = table + "\n" + text
            _say(f"  SQL statements per {unit}: {per:.1f}")
        summary.write_text(text)
        _say(f"  cProfile: {written} (summary {summary})")


def _profiler(
    service: ServiceProcess, cfg: Config, profile: Path | None, backend: str, phase: str
) -> PhaseProfile | None:
    if profile is None:
        return None
    profile.mkdir(parents=True, exist_ok=True)
    if not service.profile_on():
        return None
    spy = None
    if cfg.py_spy:
        spy = Profiler(service.pid, profile / f"{backend}-{phase}.pyspy.txt")
        spy = spy if spy.start() else None
    return PhaseProfile(service, profile / f"{backend}-{phase}.prof", spy)


async def _stop_profiler(profiler: PhaseProfile | None, requests: int, unit: str) -> None:
    if profiler is not None:
        await profiler.stop(requests, unit)


# --------------------------------------------------------------------------- aggregation


def median_sections(runs: list[dict[str, Any]]) -> dict[str, Section]:
    """Per metric: the median over runs; a metric any run could not take stays a string."""
    out: dict[str, Section] = {}
    for name in SECTIONS:
        keys: list[str] = []
        for run in runs:
            for key in run.get(name, {}):
                if key not in keys:
                    keys.append(key)
        section: Section = {}
        for key in keys:
            values = [run[name][key] for run in runs if key in run.get(name, {})]
            strings = [v for v in values if isinstance(v, str)]
            if strings:
                section[key] = strings[0]
            else:
                numbers = [float(v) for v in values]
                middle = statistics.median(numbers)
                section[key] = (
                    int(middle) if all(isinstance(v, int) for v in values) else round(middle, 3)
                )
        out[name] = section
    return out
