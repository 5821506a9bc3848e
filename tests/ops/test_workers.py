"""Several workers: ``serve attribution --workers 2`` and /metrics counts every worker's requests.

prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) keeps one file of samples
per worker pid; whichever worker answers /metrics must report the sum over all of them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from services.launcher import migrate, sqlite_url
from tests.ops.conftest import Launcher, bearer, token

pytestmark = pytest.mark.ops

K = 200
ROUNDS = 10
ROUTE = "/v1/settings"
SCRAPES = 8


def requests_in_exposition(text: str, route: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "http_requests":  # the parser drops the _total suffix of counters
            continue
        for sample in family.samples:
            if sample.name == "http_requests_total" and sample.labels.get("route") == route:
                total += sample.value
    return total


def requests_per_worker(directory: Path, route: str) -> dict[int, float]:
    """The route's request count in each worker's own sample file (``counter_<pid>.db``)."""
    counts: dict[int, float] = {}
    for path in sorted(directory.glob("counter_*.db")):
        pid = int(path.stem.split("_", 1)[1])
        total = 0.0
        for metric in MultiProcessCollector.merge([str(path)], accumulate=True):
            for sample in metric.samples:
                if sample.name == "http_requests_total" and sample.labels.get("route") == route:
                    total += sample.value
        counts[pid] = total
    return counts


def wait_for_workers(directory: Path, count: int, timeout: float = 30.0) -> None:
    """Each worker creates its sample files when it imports the app: wait for ``count`` pids."""
    deadline = time.monotonic() + timeout
    pids: set[str] = set()
    while time.monotonic() < deadline:
        pids = {path.stem.rsplit("_", 1)[1] for path in directory.glob("*_*.db")}
        if len(pids) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"only {len(pids)} of {count} workers started in {timeout:.0f}s")


def test_metrics_sum_over_two_workers(launcher: Launcher, tmp_path: Path) -> None:
    multiproc_dir = tmp_path / "prometheus-multiproc"
    service = launcher.service(
        "attribution",
        database_url=migrate("attribution", sqlite_url(tmp_path / "attribution.db")),
        workers=2,
        # Several workers need the analytic store on a server, or funnels from the database.
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir), "ATTRIBUTION_ANALYTICS": "sql"},
    )
    service.start()
    service.wait_ready()
    wait_for_workers(multiproc_dir, 2)
    headers = bearer(token("t-workers", "reports:read"))
    # No keep-alive: each request is a new connection, so both workers get a share.
    limits = httpx.Limits(max_keepalive_connections=0)

    sent = 0
    with (
        httpx.Client(base_url=service.url, timeout=10.0, limits=limits) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        # Which worker accepts a connection is the kernel's choice, and on a loaded machine
        # one may take a whole round: send rounds until both have served some (bounded).
        for _ in range(ROUNDS):
            statuses = list(
                pool.map(lambda _: client.get(ROUTE, headers=headers).status_code, range(K))
            )
            assert statuses == [200] * K
            sent += K
            counts = requests_per_worker(multiproc_dir, ROUTE)
            if len(counts) == 2 and all(counts.values()):
                break

    seen: list[float] = []
    with httpx.Client(base_url=service.url, timeout=10.0, limits=limits) as client:
        # A worker counts a request just after its last byte is sent, so the client may see
        # the answer a moment before the count: wait (bounded) for the first full count.
        settle = time.monotonic() + 5.0
        while time.monotonic() < settle:
            if requests_in_exposition(client.get("/metrics").text, ROUTE) >= sent:
                break
            time.sleep(0.05)
        for _ in range(SCRAPES):
            answer = client.get("/metrics")
            assert answer.status_code == 200
            seen.append(requests_in_exposition(answer.text, ROUTE))
    assert seen == [float(sent)] * SCRAPES, seen

    per_worker = requests_per_worker(multiproc_dir, ROUTE)
    assert sum(per_worker.values()) == sent
    serving = sorted(pid for pid, count in per_worker.items() if count > 0)
    print(
        f"\n[workers] {sent} x GET {ROUTE} on 2 workers; /metrics sum on {SCRAPES} scrapes: "
        f"{sorted(set(seen))}; per worker pid: {per_worker}"
    )
    assert len(serving) == 2, f"only {serving} served requests: {per_worker}"
