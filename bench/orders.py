"""The orders phases of the benchmark, each driven by ``bench.orders_load`` in its own process.

    python -m bench.orders [--db sqlite|postgres|both] [--events 100000]
                           [--rates 100,200,400] [--seconds 20] [--closed-orders 3000]
                           [--profile DIR]

Alone (``python -m bench.orders``): fresh databases, the data set's catalog and events loaded
through the APIs, then only the orders phases, printed as a table per database. From
``python -m bench`` the same phases make its orders section.

Phases: a closed loop (``--concurrency`` clients back to back: the most one service process
sustains, with the service's and the database's CPU per order), then an open loop at each
offered rate (latency from the scheduled send time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import orders_load, workloads
from bench.infra import CpuMeter, Databases, ServiceProcess, attribution_service
from bench.profiling import summarise_pstats, summarise_sql
from services.demo import LOAD, Month, generate
from services.demo.post import Api, prepare_attribution
from services.launcher import migrate
from shared.auth import mint_token

Section = dict[str, float | int | str]
RATES = (100.0, 200.0, 400.0)


@dataclass(frozen=True)
class OrdersConfig:
    rates: tuple[float, ...] = RATES
    seconds: float = 20.0
    concurrency: int = 8
    closed_orders: int = 3000
    connections: int = 512  # open loop: at most this many at once


def write_templates(data: Month, path: Path) -> Path:
    """The data set's paid orders, one body per line, for the load generator."""
    path.write_bytes(b"".join(orjson.dumps(order.body()) + b"\n" for order in data.orders))
    return path


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rate_key(rate: float) -> str:
    return f"{rate:g}".replace(".", "_")


async def measure(
    service: ServiceProcess,
    token: str,
    templates: Path,
    cfg: OrdersConfig,
    *,
    db_name: str | None,
    say: Any = print,
    profile: Path | None = None,
) -> Section:
    """The closed loop (with CPU per order), then the open loop at each rate.

    ``profile``: the service was started under ``bench.serve_profiled``; its cProfile stats of
    the closed loop (and their summary) go to that file.
    """
    profiling = profile is not None and service.profile_on()
    meter = CpuMeter(service.pid, db_name)
    meter.start()
    closed = await orders_load.run_process(
        service.url,
        token,
        templates,
        closed=cfg.concurrency,
        orders=cfg.closed_orders,
        tag="",
    )
    service_cpu, db_cpu = meter.stop()
    answered = max(1, int(closed["ok"]))
    if profiling and profile is not None:
        written = await service.profile_off(profile)
        if written is not None:
            per, sql = summarise_sql(written.with_suffix(".sql.json"), answered)
            summary = sql + "\n" + summarise_pstats(written)
            written.with_suffix(".summary.txt").write_text(summary)
            say(f"  cProfile of the closed loop: {written}; {per:.1f} SQL statements per order")
    say(
        f"  orders closed loop ({cfg.concurrency} in flight): {closed['requests']} → "
        f"{closed['answered_per_s']:.0f}/s, p50 {closed['p50_ms']:.1f} ms, p99 "
        f"{closed['p99_ms']:.1f} ms, statuses {closed['statuses']}, service CPU "
        f"{service_cpu / answered * 1000:.2f} ms/order"
        + (f" + DB {db_cpu / answered * 1000:.2f}" if db_cpu is not None else "")
        + f"; load {closed['load_average_end']}"
    )
    section: Section = {
        "closed_loop_orders": int(closed["requests"]),
        "closed_loop_concurrency": cfg.concurrency,
        "closed_loop_per_s": float(closed["answered_per_s"]),
        "closed_loop_p50_ms": float(closed["p50_ms"]),
        "closed_loop_p99_ms": float(closed["p99_ms"]),
        "closed_loop_errors": int(closed["errors"]),
        "closed_loop_service_cpu_ms_per_order": round(service_cpu / answered * 1000, 2),
        "closed_loop_db_cpu_ms_per_order": (
            round(db_cpu / answered * 1000, 2) if db_cpu is not None else "n/a (in-process SQLite)"
        ),
        "closed_loop_load_1m": float(closed["load_average_end"][0]),
    }
    for rate in cfg.rates:
        key = rate_key(rate)
        opened = await orders_load.run_process(
            service.url,
            token,
            templates,
            rate=rate,
            seconds=cfg.seconds,
            tag=f"o{key}-",
            connections=cfg.connections,
        )
        say(
            f"  orders open loop {rate:g}/s offered: {opened['requests']} → "
            f"{opened['answered_per_s']:.0f}/s answered, p50 {opened['p50_ms']:.1f} ms, p99 "
            f"{opened['p99_ms']:.1f} ms, statuses {opened['statuses']}, "
            f"{opened['connections']} connections; load {opened['load_average_end']}"
        )
        section[f"open_{key}_offered_per_s"] = rate
        section[f"open_{key}_answered_per_s"] = float(opened["answered_per_s"])
        section[f"open_{key}_p50_ms"] = float(opened["p50_ms"])
        section[f"open_{key}_p99_ms"] = float(opened["p99_ms"])
        section[f"open_{key}_errors"] = int(opened["errors"])
        section[f"open_{key}_timeouts"] = int(opened["timeouts"])
        section[f"open_{key}_load_1m"] = float(opened["load_average_end"][0])
        if opened["timeouts"]:
            await asyncio.sleep(5)  # let the service finish what it already took in
    return section


def table(results: dict[str, Section], rates: Sequence[float]) -> str:
    """The orders figures per database, as a Markdown table."""
    backends = list(results)
    lines = ["| orders | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]

    def row(label: str, cell: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(results[b]) for b in backends) + " |")

    row(
        "closed loop (8 in flight): orders/s, p50 / p99 ms",
        lambda s: (
            f"{s['closed_loop_per_s']:.0f}/s, {s['closed_loop_p50_ms']:.1f} / "
            f"{s['closed_loop_p99_ms']:.1f}"
        ),
    )
    row(
        "CPU per order: service (+ DB), ms",
        lambda s: (
            f"{s['closed_loop_service_cpu_ms_per_order']}"
            + (
                f" + {s['closed_loop_db_cpu_ms_per_order']}"
                if not isinstance(s["closed_loop_db_cpu_ms_per_order"], str)
                else ""
            )
        ),
    )
    for rate in rates:
        key = rate_key(rate)
        row(
            f"open loop {rate:g}/s offered: answered/s, p50 / p99 ms",
            lambda s, k=key: (
                f"{s[f'open_{k}_answered_per_s']:.0f}/s, "
                f"{s[f'open_{k}_p50_ms']:.1f} / {s[f'open_{k}_p99_ms']:.1f}"
                + (f" ({s[f'open_{k}_errors']} errors)" if s[f"open_{k}_errors"] else "")
            ),
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- alone


async def settle(attribution: Any, catch_up: dict[str, Any], attempts: int = 5) -> None:
    """Wait until the analytic store has copied the ingested events (a funnel over event
    steps answers only then), so that replication does not run during the orders phases."""
    for _ in range(attempts):
        timing = await workloads.timed_query(attribution, "POST", "/v1/funnels", 1, body=catch_up)
        if timing.unavailable is None:
            return
        await asyncio.sleep(2)
    print("  warning: the analytic store did not catch up; replication may overlap", flush=True)


async def _one_backend(
    backend: str, data: Month, cfg: OrdersConfig, args: argparse.Namespace, workdir: Path
) -> Section:
    from bench.runner import SCOPES, TENANT, Config, Prepared, _catch_up_body, start_catalog

    bench_cfg = Config(events=args.events, runs=1, quick=False, workdir=workdir)
    prep = Prepared.build(data, bench_cfg)
    host = await start_catalog(backend, bench_cfg, prep)  # type: ignore[arg-type]
    run_dir = workdir / f"{backend}-orders"
    run_dir.mkdir(parents=True, exist_ok=True)
    dbs = Databases(backend, run_dir, bench_cfg.pg_admin_url)  # type: ignore[arg-type]
    service: ServiceProcess | None = None
    try:
        await dbs.create("attribution")
        await asyncio.to_thread(migrate, "attribution", dbs.url("attribution"))
        service = attribution_service(
            dbs,
            host.secret,
            run_dir,
            host.service.url,
            1,
            "orders",
            profile=args.profile is not None,
        )
        service.start()
        await asyncio.to_thread(service.wait_ready)
        token = mint_token(host.secret, TENANT, SCOPES, ttl_seconds=86_400)
        async with workloads.client(service.url, token) as attribution:
            await prepare_attribution(Api(attribution, "attribution"))
            stats = await workloads.ingest(attribution, prep.event_bodies, 6)
            print(f"  {stats.received:,} events ingested in {stats.seconds:.1f}s", flush=True)
            await settle(attribution, _catch_up_body(prep))
        templates = write_templates(data, run_dir / "orders.jsonl")
        return await measure(
            service,
            token,
            templates,
            cfg,
            db_name=dbs.name("attribution") if backend == "postgres" else None,
            profile=args.profile / f"{backend}-orders.prof" if args.profile else None,
        )
    finally:
        if service is not None:
            service.stop()
        await dbs.drop_all()
        await host.stop(False)


async def main_async(args: argparse.Namespace) -> int:
    from bench.runner import END

    cfg = OrdersConfig(
        rates=tuple(float(r) for r in args.rates.split(",")),
        seconds=args.seconds,
        concurrency=args.concurrency,
        closed_orders=args.closed_orders,
        connections=args.connections,
    )
    data = generate(args.seed, args.events, END, LOAD)
    print(f"data set: {len(data.orders)} orders; load average {_load()}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cf-orders-"))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, Section] = {}
    for backend in backends:
        print(f"== {backend} ({time.strftime('%H:%M:%S')}, load {_load()})", flush=True)
        results[backend] = await _one_backend(backend, data, cfg, args, workdir)
    print()
    print(table(results, cfg.rates))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES))
    parser.add_argument("--seconds", type=float, default=20.0, help="per open-loop rate")
    parser.add_argument("--concurrency", type=int, default=8, help="closed loop: in flight")
    parser.add_argument("--closed-orders", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=512, help="open loop: at most")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--profile",
        type=lambda text: Path(text).resolve(),
        default=None,
        metavar="DIR",
        help="run the service under cProfile during the closed loop (stats in DIR)",
    )

    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
