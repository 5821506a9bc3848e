"""``python -m bench``: the ClipFunnel benchmark suite.

    python -m bench [--db sqlite|postgres|both] [--events N] [--runs 3] [--quick]
                    [--workers N] [--json PATH] [--profile DIR]

Generates a seeded data set, starts the real services on fresh databases for every run, and
measures ingest (against the plain bulk insert), orders, funnels (against a greedy SQL
funnel) and reports; prints a table of medians and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import report
from bench.infra import REPO_ROOT, Backend, postgres_reachable
from bench.runner import END, Config, Prepared, median_sections, one_run, start_catalog
from services.demo import LOAD, generate

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "latest.json"
QUICK_EVENTS = 20_000
FULL_EVENTS = 1_000_000


def parse_args(argv: list[str] | None = None, prog: str = "python -m bench") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres", "both"),
        default=None,
        help="database(s) to run on (default: both, PostgreSQL skipped when unreachable)",
    )
    parser.add_argument("--events", type=int, default=None, help="events in the data set")
    parser.add_argument("--runs", type=int, default=None, help="runs per database (median)")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EVENTS:,} events, 1 run, short phases"
    )
    parser.add_argument("--workers", type=int, default=1, help="attribution service workers")
    parser.add_argument(
        "--concurrency",
        dest="ingest_concurrency",
        type=int,
        default=6,
        help="ingest requests in flight",
    )
    parser.add_argument(
        "--order-rate", type=float, default=200.0, help="the open-loop rate the target reads"
    )
    parser.add_argument(
        "--order-rates",
        type=lambda text: tuple(float(rate) for rate in text.split(",")),
        default=(100.0, 200.0, 400.0),
        help="open-loop orders/s offered, each for --order-seconds (default 100,200,400)",
    )
    parser.add_argument(
        "--order-seconds",
        dest="open_loop_seconds",
        type=float,
        default=15.0,
        help="seconds per open-loop rate",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pg-url",
        dest="pg_admin_url",
        default=os.environ.get(
            "CLIPFUNNEL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL admin URL (databases cf_bench_* are created and dropped there)",
    )
    parser.add_argument(
        "--pg-baseline",
        choices=("unnest", "copy", "both"),
        default="both",
        help="PostgreSQL bulk-insert method(s) for the baseline (the fastest counts)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    parser.add_argument(
        "--profile",
        dest="profile_dir",
        type=lambda text: Path(text).resolve(),
        default=None,
        metavar="DIR",
        help="after the measured runs, one more run with the attribution service under "
        "cProfile during ingest and orders, counting its SQL statements (stats and summaries "
        "in DIR; that run is kept out of the medians)",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="with --profile: also record py-spy (wall clock, raw stacks) if installed",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    args = parser.parse_args(argv)
    args.command = " ".join([prog, *(sys.argv[1:] if argv is None else argv)])
    if args.events is None:
        args.events = QUICK_EVENTS if args.quick else FULL_EVENTS
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.runs < 1 or args.events < 100:
        parser.error("--runs must be ≥ 1 and --events ≥ 100")
    return args


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def main_async(args: argparse.Namespace) -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration otherwise
    backends: list[Backend] = []
    notes: list[str] = []
    if args.db in (None, "both", "sqlite"):
        backends.append("sqlite")
    if args.db in (None, "both", "postgres"):
        problem = await postgres_reachable(args.pg_admin_url)
        if problem is None:
            backends.append("postgres")
        elif args.db is None:
            notes.append(f"PostgreSQL skipped: unreachable ({problem})")
            print(notes[-1], flush=True)
        else:
            print(f"PostgreSQL unreachable at {args.pg_admin_url}: {problem}", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="cf-bench-"))
    cfg = Config.from_args(args, workdir)
    started = time.perf_counter()
    data = generate(cfg.seed, cfg.events, END, LOAD)
    prep = Prepared.build(data, cfg)
    generated = time.perf_counter() - started
    summary = data.summary()
    print(
        f"data set: {summary['events_sent']:,} events sent ({summary['unique_events']:,} "
        f"unique), {summary['users']:,} users, {summary['contents']:,} contents, "
        f"{summary['orders']:,} orders, built in {generated:.1f}s; load average "
        f"{machine()['load_average']}",
        flush=True,
    )
    output: dict[str, Any] = {
        "meta": {
            "command": args.command,
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "machine": machine(),
            "config": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in cfg.__dict__.items()
                if k not in ("workdir",)
            },
            "dataset": {**summary, "generation_seconds": round(generated, 2)},
            "notes": notes,
        },
        "results": {},
    }
    failed = False

    def save() -> None:
        """Written after every run, so a long benchmark cut short keeps what it measured."""
        for backend, entry in output["results"].items():
            if entry["runs"]:
                entry["runs_completed"] = len(entry["runs"])
                entry["median"] = median_sections(entry["runs"])
                entry["info"] = entry["runs"][-1].get("info", {})
                entry["targets"] = report.targets(entry["median"], backend)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(output, option=orjson.OPT_INDENT_2))

    try:
        for backend in backends:
            entry: dict[str, Any] = {
                "load_average_start": machine()["load_average"],
                "runs": [],
            }
            output["results"][backend] = entry
            print(f"== {backend}", flush=True)
            host = await start_catalog(backend, cfg, prep)
            entry["catalog_puts"] = host.puts
            try:
                for index in range(cfg.runs):
                    print(f"== {backend} run {index + 1}/{cfg.runs}", flush=True)
                    try:
                        entry["runs"].append(await one_run(backend, cfg, prep, host, index))
                        save()
                    except Exception as exc:  # one failed run must not lose the others
                        failed = True
                        entry.setdefault("errors", []).append(f"run {index + 1}: {exc}")
                        print(f"  run failed: {exc}", file=sys.stderr, flush=True)
                if cfg.profile_dir is not None:
                    print(f"== {backend} profiled run (not in the medians)", flush=True)
                    try:
                        entry["profiled_run"] = await one_run(
                            backend, cfg, prep, host, cfg.runs, profiled=True
                        )
                    except Exception as exc:  # one failed run must not lose the others
                        failed = True
                        entry.setdefault("errors", []).append(f"profiled run: {exc}")
                        print(f"  profiled run failed: {exc}", file=sys.stderr, flush=True)
            finally:
                await host.stop(cfg.keep)
            entry["runs_completed"] = len(entry["runs"])
            entry["load_average_end"] = machine()["load_average"]
            entry["median"] = median_sections(entry["runs"]) if entry["runs"] else {}
            entry["info"] = entry["runs"][-1].get("info", {}) if entry["runs"] else {}
            entry["targets"] = report.targets(entry["median"], backend)
    finally:
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept databases and logs under {workdir}")
    output["meta"]["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    output["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    save()
    completed = {b: r for b, r in output["results"].items() if r.get("runs")}
    if completed:
        print()
        print(report.table(completed))
    print(f"\nJSON: {args.json}")
    return 1 if failed else 0


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    return asyncio.run(main_async(parse_args(argv, prog)))


if __name__ == "__main__":
    sys.exit(main())
