"""Summaries of ``py-spy record --format raw`` profiles (collapsed stacks).

Each line is ``frame;frame;…;leaf COUNT`` with frames like ``name (path/file.py:LINE)``.
The summary lists where the samples are spent: by package (leaf frame), by function (self,
the leaf) and inclusively (every function on the stack, counted once per sample).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<name>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
_IDLE = ("select (selectors.py)", "poll (selectors.py)", "_run_once (asyncio/base_events.py)")

#: Package buckets, first match wins (matched against the frame's file path).
BUCKETS: tuple[tuple[str, str], ...] = (
    ("services/attribution/events", "service: events"),
    ("services/attribution/orders", "service: orders"),
    ("services/attribution/credit", "service: credit"),
    ("services/attribution/funnels", "service: funnels"),
    ("services/attribution/settings", "service: settings"),
    ("services/", "service: other"),
    ("shared/", "shared/"),
    ("sqlalchemy/", "sqlalchemy"),
    ("asyncpg/", "asyncpg"),
    ("aiosqlite/", "aiosqlite"),
    ("sqlite3/", "sqlite3"),
    ("pydantic", "pydantic"),
    ("fastapi/", "fastapi"),
    ("starlette/", "starlette"),
    ("uvicorn/", "uvicorn"),
    ("httptools", "uvicorn"),
    ("h11/", "uvicorn"),
    ("prometheus_client/", "prometheus_client"),
    ("structlog/", "logging"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio"),
    ("uvloop/", "asyncio"),
    ("json/", "json (stdlib)"),
    ("datetime", "datetime"),
    ("threading.py", "threads"),
    ("queue.py", "threads"),
    ("concurrent/", "threads"),
)


def _short(frame: str) -> tuple[str, str]:
    """``(function (file), path)`` without the line number, the path shortened."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    path = match["path"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})", path


def _bucket(path: str) -> str:
    for needle, name in BUCKETS:
        if needle in path:
            return name
    return "other" if path else "native/unknown"


def summarise(path: Path, top: int = 25) -> str:
    total = 0
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    idle = 0
    for raw in path.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        leaf, leaf_path = frames[-1]
        if leaf in _IDLE or leaf.startswith(("select (", "epoll_wait", "poll (")):
            idle += count
            continue
        self_counts[leaf] += count
        buckets[_bucket(leaf_path)] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
    if total == 0:
        return f"{path}: no samples\n"
    busy = total - idle
    lines = [
        f"profile {path.name}: {total} samples, {idle} idle ({idle / total:.0%}), "
        f"{busy} busy; percentages are of busy samples",
        "",
        "by package (leaf frame):",
    ]
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in buckets.most_common(top)]
    lines += ["", "self (leaf function):"]
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "inclusive (on the stack):"]
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines) + "\n"


def _where(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarise_pstats(path: Path, top: int = 30) -> str:
    """cProfile stats of one phase: CPU by package, by function (self), and the cumulative
    cost of the service's own functions (which call is worth optimising)."""
    import pstats

    stats = pstats.Stats(str(path))
    entries: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    # pstats keeps its table in an attribute typeshed does not declare.
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in entries.values()) or 1.0
    by_package: Counter[str] = Counter()
    own: list[tuple[float, float, int, str]] = []
    selfs: list[tuple[float, int, str]] = []
    for (filename, line, func), (_cc, calls, tt, ct, _callers) in entries.items():
        where = _where(filename)
        name = f"{func} ({where}:{line})"
        by_package[_bucket(where) if filename != "~" else "builtins/C"] += int(tt * 1e6)
        selfs.append((tt, calls, name))
        if where.startswith(("services/", "shared/")):
            own.append((ct, tt, calls, name))
    lines = [f"cProfile {path.name}: {total:.2f} s of profiled CPU (event-loop thread)", ""]
    lines.append("by package (self time):")
    lines += [f"  {us / 1e6 / total:6.1%}  {name}" for name, us in by_package.most_common(top)]
    lines += ["", "self time, top functions:   share   seconds   calls"]
    for tt, calls, name in sorted(selfs, reverse=True)[:top]:
        lines.append(f"  {tt / total:6.1%}  {tt:8.3f}  {calls:8d}  {name}")
    lines += ["", "service code, cumulative:   share   seconds   calls"]
    for ct, _tt, calls, name in sorted(own, reverse=True)[: top + 10]:
        lines.append(f"  {ct / total:6.1%}  {ct:8.3f}  {calls:8d}  {name}")
    return "\n".join(lines) + "\n"


def summarise_sql(path: Path, requests: int, top: int = 30) -> tuple[float, str]:
    """SQL statements sent during a phase: (statements per request, text table)."""
    import orjson

    rows = orjson.loads(path.read_bytes())
    total = sum(int(r["count"]) for r in rows)
    per = total / requests if requests else 0.0
    lines = [f"SQL statements: {total} for {requests} requests = {per:.1f} per request", ""]
    for r in rows[:top]:
        many = " [executemany]" if r["executemany"] else ""
        lines.append(f"  {int(r['count']) / max(1, requests):7.2f}/req  {r['statement']}{many}")
    return per, "\n".join(lines) + "\n"
