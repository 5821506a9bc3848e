"""A load generator for ``POST /v1/orders``, run as a process of its own.

    python -m bench.orders_load --url http://127.0.0.1:8002 --bodies orders.jsonl \\
        --rate 200 --seconds 20            # open loop: 200 orders/s whatever the answers
    python -m bench.orders_load --url ... --bodies orders.jsonl --closed 8 --orders 3000

The token comes from ``--token`` or ``$CLIPFUNNEL_BENCH_TOKEN``. ``--bodies`` holds one order
body (JSON) per line; when a phase needs more orders than the file holds, the bodies are used
again under new order ids (``<order_id>.<tag><k>``: same buyer, touches and items, so each is
attributed like the original). Prints one JSON object: offered and answered rate, latency
percentiles, statuses, and the CPU this process used.

Its own process, so the figures measure the service and not the client competing with it for
the event loop: the client is a plain HTTP/1.1 keep-alive client on asyncio streams (uvloop
when installed), every request pre-serialised before the clock starts. Open loop: request
``i`` is due at ``start + i / rate`` and its latency counts from then, so a service that
falls behind is charged for the queue it builds (no coordinated omission); requests still
unanswered ``--grace`` seconds after the last one was due are abandoned and counted as
timed out with their latency so far.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

#: Pseudo status codes: no answer at all, and no answer before the phase's deadline.
TRANSPORT_ERROR = 0
TIMED_OUT = -1
PATH = "/v1/orders"
_REPO_ROOT = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0–100) of a non-empty sample."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def order_bodies(templates: Sequence[dict[str, Any]], count: int, tag: str) -> list[bytes]:
    """``count`` order bodies: the templates in turn, under new ids once they run out."""
    if not templates:
        raise ValueError("no order bodies to send")
    bodies: list[bytes] = []
    for index in range(count):
        lap, position = divmod(index, len(templates))
        body = templates[position]
        if lap or tag:
            body = {**body, "order_id": f"{body['order_id']}.{tag}{lap}"}
        bodies.append(orjson.dumps(body))
    return bodies


def requests(url: str, token: str, bodies: Sequence[bytes]) -> tuple[str, int, list[bytes]]:
    """(host, port, each body as a complete HTTP/1.1 request)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nConnection: keep-alive\r\n"
    ).encode()
    return host, port, [head + b"Content-Length: %d\r\n\r\n" % len(b) + b for b in bodies]


class _Connection:
    """One keep-alive connection; ``send`` writes a request and reads its answer's status."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, request: bytes) -> int:
        self.writer.write(request)
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("connection closed by the service")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length:
            await reader.readexactly(length)
        if close:
            raise ConnectionResetError("the service closed the connection")
        return status

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Pool:
    """Idle connections, opened on demand up to ``limit`` (more requests wait for one)."""

    host: str
    port: int
    limit: int
    idle: asyncio.Queue[_Connection] = field(default_factory=asyncio.Queue)
    opened: int = 0
    peak: int = 0

    async def take(self) -> _Connection:
        if not self.idle.empty():
            return self.idle.get_nowait()
        if self.opened < self.limit:
            self.opened += 1
            self.peak = max(self.peak, self.opened)
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self.opened -= 1
                raise
            return _Connection(reader, writer)
        return await self.idle.get()

    def give(self, connection: _Connection) -> None:
        self.idle.put_nowait(connection)

    def drop(self, connection: _Connection) -> None:
        connection.close()
        self.opened -= 1

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().close()


@dataclass
class Phase:
    """What one phase measured."""

    mode: str
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    offered_per_s: float | None
    connections: int
    first_error: str | None

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0) + self.statuses.get(201, 0)

    def figures(self) -> dict[str, Any]:
        lat = self.latencies

        def ms(q: float) -> float:
            return round(percentile(lat, q) * 1000, 2) if lat else 0.0

        return {
            "mode": self.mode,
            "offered_per_s": self.offered_per_s,
            "requests": self.requests,
            "ok": self.ok,
            "answered_per_s": round(self.ok / self.seconds, 1) if self.seconds > 0 else 0.0,
            "seconds": round(self.seconds, 2),
            "p50_ms": ms(50),
            "p90_ms": ms(90),
            "p99_ms": ms(99),
            "max_ms": round(max(lat) * 1000, 2) if lat else 0.0,
            "errors": sum(n for s, n in self.statuses.items() if s not in (200, 201)),
            "timeouts": self.statuses.get(TIMED_OUT, 0),
            "statuses": {str(s): n for s, n in sorted(self.statuses.items())},
            "connections": self.connections,
            "first_error": self.first_error,
        }


async def _one(pool: _Pool, request: bytes, statuses: dict[int, int], errors: list[str]) -> None:
    try:
        connection = await pool.take()
    except OSError as exc:
        statuses[TRANSPORT_ERROR] = statuses.get(TRANSPORT_ERROR, 0) + 1
        errors.append(f"connect: {type(exc).__name__}: {exc}")
        return
    try:
        status = await connection.send(request)
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
        pool.drop(connection)
        statuses[TRANSPORT_ERROR] = statuses.get(TRANSPORT_ERROR, 0) + 1
        errors.append(f"{type(exc).__name__}: {exc}")
        return
    except BaseException:
        pool.drop(connection)  # cancelled mid-answer: the connection is in an unknown state
        raise
    pool.give(connection)
    statuses[status] = statuses.get(status, 0) + 1
    if status not in (200, 201) and not errors:
        errors.append(f"HTTP {status}")


async def open_loop(
    host: str,
    port: int,
    wire: Sequence[bytes],
    rate: float,
    *,
    connections: int = 512,
    grace_s: float = 10.0,
) -> Phase:
    """Send request ``i`` at ``start + i / rate`` whatever the answers (see the module doc)."""
    pool = _Pool(host, port, connections)
    statuses: dict[int, int] = {}
    errors: list[str] = []
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    deadline = start + len(wire) / rate + grace_s
    tasks: list[asyncio.Task[None]] = []

    async def one(scheduled: float, request: bytes) -> None:
        try:
            await asyncio.wait_for(_one(pool, request, statuses, errors), deadline - loop.time())
        except TimeoutError:
            statuses[TIMED_OUT] = statuses.get(TIMED_OUT, 0) + 1
        latencies.append(loop.time() - scheduled)

    for index, request in enumerate(wire):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, request)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    pool.close()
    first = errors[0] if errors else None
    return Phase("open", len(wire), elapsed, latencies, statuses, rate, pool.peak, first)


async def closed_loop(host: str, port: int, wire: Sequence[bytes], concurrency: int) -> Phase:
    """``concurrency`` clients posting back to back: the most the service sustains."""
    pool = _Pool(host, port, concurrency)
    statuses: dict[int, int] = {}
    errors: list[str] = []
    latencies: list[float] = []
    pending = iter(wire)

    async def client() -> None:
        for request in pending:
            sent = time.perf_counter()
            await _one(pool, request, statuses, errors)
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    pool.close()
    first = errors[0] if errors else None
    return Phase("closed", len(wire), elapsed, latencies, statuses, None, pool.peak, first)


def load_templates(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.orders_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", required=True, help="the attribution service's base URL")
    parser.add_argument("--bodies", type=Path, required=True, help="order bodies, one per line")
    parser.add_argument("--token", default=os.environ.get("CLIPFUNNEL_BENCH_TOKEN"))
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: orders/s offered")
    parser.add_argument("--seconds", type=float, default=20.0, help="open loop: phase length")
    parser.add_argument(
        "--closed", type=int, default=None, metavar="N", help="closed loop with N in flight"
    )
    parser.add_argument("--orders", type=int, default=3000, help="closed loop: orders to send")
    parser.add_argument("--tag", default="", help="order-id suffix, so phases never collide")
    parser.add_argument("--connections", type=int, default=512, help="open loop: at most")
    parser.add_argument("--grace", type=float, default=10.0, help="open loop: seconds to wait")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("give --token or set CLIPFUNNEL_BENCH_TOKEN")
    return args


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    templates = load_templates(args.bodies)
    count = args.orders if args.closed else max(1, int(args.rate * args.seconds))
    host, port, wire = requests(args.url, args.token, order_bodies(templates, count, args.tag))
    load_start = [round(x, 2) for x in os.getloadavg()]
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    if args.closed:
        phase = await closed_loop(host, port, wire, args.closed)
    else:
        phase = await open_loop(
            host, port, wire, args.rate, connections=args.connections, grace_s=args.grace
        )
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    figures = phase.figures()
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    figures["client_cpu_s"] = round(cpu, 2)
    figures["load_average_start"] = load_start
    figures["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


async def run_process(
    url: str,
    token: str,
    bodies: Path,
    *,
    rate: float | None = None,
    seconds: float = 20.0,
    closed: int | None = None,
    orders: int = 3000,
    tag: str = "",
    connections: int = 512,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run one phase in a new ``python -m bench.orders_load`` process; its figures."""
    argv = [sys.executable, "-m", "bench.orders_load", "--url", url, "--bodies", str(bodies)]
    if closed is not None:
        argv += ["--closed", str(closed), "--orders", str(orders)]
    else:
        assert rate is not None, "an open-loop phase needs a rate"
        argv += ["--rate", str(rate), "--seconds", str(seconds)]
        argv += ["--connections", str(connections)]
    argv += ["--tag", tag]
    env = {**os.environ, "CLIPFUNNEL_BENCH_TOKEN": token}
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=_REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"the load generator did not finish within {timeout_s:.0f} s") from None
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed: {err.decode(errors='replace')[-800:]}")
    figures: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    figures = runner(main_async(args))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
