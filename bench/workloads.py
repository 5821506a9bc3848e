"""The measured HTTP workloads: event ingest, orders, funnels and reports."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.infra import BenchError
from bench.orders_load import percentile
from services.demo.post import each

#: A measurement that could not be taken; the string says why.
NA_MISSING = "n/a (endpoint missing)"
#: Pseudo status codes: no answer at all, and no answer before the phase's deadline.
TRANSPORT_ERROR = 0
TIMED_OUT = -1


def client(base_url: str, token: str, connections: int = 64) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=httpx.Timeout(300.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def _problem(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:400]}"


# --------------------------------------------------------------------------- ingest


@dataclass
class IngestStats:
    seconds: float = 0.0
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_rejections: list[Any] = field(default_factory=list)
    batch_latencies: list[float] = field(default_factory=list)
    failed_batches: int = 0  # answered 5xx/4xx or not answered at all

    @property
    def events_per_s(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0


async def ingest(
    attribution: httpx.AsyncClient, bodies: Sequence[bytes], concurrency: int
) -> IngestStats:
    """POST every pre-serialised batch with ``concurrency`` requests in flight."""
    stats = IngestStats()

    async def post(body: bytes) -> None:
        sent = time.perf_counter()
        try:
            response = await attribution.post("/v1/events", content=body)
        except httpx.HTTPError as exc:
            stats.failed_batches += 1
            if stats.failed_batches == 1:
                print(f"  warning: POST /v1/events {type(exc).__name__}: {exc}", flush=True)
            return
        stats.batch_latencies.append(time.perf_counter() - sent)
        if response.status_code not in (200, 422):
            stats.failed_batches += 1
            if stats.failed_batches == 1:
                print(f"  warning: POST /v1/events {_problem(response)}", flush=True)
            return
        answer = orjson.loads(response.content)
        stats.received += int(answer.get("received", 0))
        stats.accepted += int(answer.get("accepted", 0))
        stats.duplicates += int(answer.get("duplicates", 0))
        rejected = answer.get("rejected") or []
        stats.rejected += len(rejected)
        if rejected and len(stats.first_rejections) < 5:
            stats.first_rejections.extend(rejected[: 5 - len(stats.first_rejections)])

    started = time.perf_counter()
    await each(bodies, post, concurrency)
    stats.seconds = time.perf_counter() - started
    if stats.failed_batches == len(bodies):
        raise BenchError("POST /v1/events failed for every batch")
    return stats


# --------------------------------------------------------------------------- orders


@dataclass
class LatencyStats:
    requests: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    offered_per_s: float | None = None

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0) + self.statuses.get(201, 0)

    @property
    def per_s(self) -> float:
        """Successful answers per second (failures and abandoned requests do not count)."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status not in (200, 201))

    @property
    def timeouts(self) -> int:
        return self.statuses.get(TIMED_OUT, 0)

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000 if self.latencies else 0.0


def _count(statuses: dict[int, int], status: int, what: str, detail: str) -> None:
    statuses[status] = statuses.get(status, 0) + 1
    if status not in (200, 201) and statuses[status] == 1:
        print(f"  warning: {what} {detail}", flush=True)


async def _post(
    attribution: httpx.AsyncClient, path: str, body: bytes, statuses: dict[int, int]
) -> None:
    """POST and count the answer's status (``TRANSPORT_ERROR`` when there is none)."""
    try:
        response = await attribution.post(path, content=body)
    except httpx.HTTPError as exc:
        _count(statuses, TRANSPORT_ERROR, f"POST {path}", f"{type(exc).__name__}: {exc}")
        return
    _count(statuses, response.status_code, f"POST {path}", _problem(response))


async def orders_open_loop(
    attribution: httpx.AsyncClient, bodies: Sequence[bytes], rate: float, grace_s: float = 20.0
) -> LatencyStats:
    """Send at a fixed rate whatever the answers; latency counts from the scheduled time.

    A service slower than the offered rate builds a backlog; requests still unanswered
    ``grace_s`` after the last one was due are abandoned, counted as ``TIMED_OUT`` with their
    latency so far (a lower bound), so the phase ends in bounded time.
    """
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    deadline = start + len(bodies) / rate + grace_s

    async def one(index: int, body: bytes) -> None:
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            await asyncio.wait_for(
                _post(attribution, "/v1/orders", body, statuses), deadline - loop.time()
            )
        except TimeoutError:
            _count(statuses, TIMED_OUT, "POST /v1/orders", "no answer within the phase")
        latencies.append(loop.time() - scheduled)

    await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies)))
    elapsed = loop.time() - start
    return LatencyStats(len(bodies), elapsed, latencies, statuses, offered_per_s=rate)


async def orders_closed_loop(
    attribution: httpx.AsyncClient, bodies: Sequence[bytes], concurrency: int
) -> LatencyStats:
    """``concurrency`` clients posting back to back: the most the service sustains."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def one(body: bytes) -> None:
        sent = time.perf_counter()
        await _post(attribution, "/v1/orders", body, statuses)
        latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await each(bodies, one, concurrency)
    return LatencyStats(len(bodies), time.perf_counter() - started, latencies, statuses)


async def post_after_sales(
    attribution: httpx.AsyncClient,
    requests: Sequence[tuple[str, bytes]],
    concurrency: int = 8,
) -> LatencyStats:
    """Cancellations and refunds (``(path, body)``), after the paid orders."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []

    async def one(item: tuple[str, bytes]) -> None:
        path, body = item
        sent = time.perf_counter()
        await _post(attribution, path, body, statuses)
        latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await each(requests, one, concurrency)
    return LatencyStats(len(requests), time.perf_counter() - started, latencies, statuses)


# --------------------------------------------------------------------------- queries


@dataclass
class QueryTiming:
    """Latencies of one query repeated, or why it could not be measured."""

    seconds: list[float]
    unavailable: str | None = None
    answer: Any = None

    @property
    def median_ms(self) -> float | str:
        if self.unavailable is not None:
            return self.unavailable
        return statistics.median(self.seconds) * 1000


async def timed_query(
    attribution: httpx.AsyncClient,
    method: str,
    path: str,
    reps: int,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> QueryTiming:
    """Run a read ``reps`` times; a missing endpoint (404/405) is reported, not raised."""
    content = orjson.dumps(body) if body is not None else None
    seconds: list[float] = []
    answer: Any = None
    for _ in range(reps):
        started = time.perf_counter()
        try:
            response = await attribution.request(method, path, content=content, params=params)
        except httpx.HTTPError as exc:
            print(f"  warning: {method} {path} {type(exc).__name__}: {exc}", flush=True)
            return QueryTiming([], f"n/a ({type(exc).__name__})")
        elapsed = time.perf_counter() - started
        if response.status_code in (404, 405):
            return QueryTiming([], NA_MISSING)
        if response.status_code != 200:
            print(f"  warning: {method} {path} {_problem(response)}", flush=True)
            return QueryTiming([], f"n/a (HTTP {response.status_code})")
        seconds.append(elapsed)
        answer = response.content
    parsed = orjson.loads(answer) if answer else None
    return QueryTiming(seconds, answer=parsed)
