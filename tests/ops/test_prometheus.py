"""Prometheus for real: it scrapes both services and sees exactly the events the test posted.

The config is derived from ``deploy/prometheus/prometheus.yml`` (same jobs, targets moved to
the loopback ports, 1 s scrape interval, the repository's ``alerts.yml`` by absolute path).
Skipped when ``/usr/bin/prometheus`` is missing, unless ``CLIPFUNNEL_REQUIRE_PROMETHEUS=1``
(set by CI, which installs Debian's ``prometheus`` package).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.launcher import Server, environment, free_port, migrate, sqlite_url
from tests.ops.conftest import Launcher, bearer, make_events, token

pytestmark = pytest.mark.ops

PROMETHEUS = Path(os.environ.get("CLIPFUNNEL_PROMETHEUS_BIN", "/usr/bin/prometheus"))
PROMTOOL = PROMETHEUS.with_name("promtool")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
REQUIRE = os.environ.get("CLIPFUNNEL_REQUIRE_PROMETHEUS") == "1"
JOBS = ("catalog", "attribution")
SCRAPES_TIMEOUT = 30.0


def _need(binary: Path) -> None:
    if binary.exists():
        return
    if REQUIRE:
        pytest.fail(f"{binary} is required (CLIPFUNNEL_REQUIRE_PROMETHEUS=1) but missing")
    pytest.skip(f"{binary} not installed (Debian package `prometheus`)")


def derived_config(ports: dict[str, int]) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with loopback targets, 1 s scrapes, absolute rules."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config.setdefault("global", {}).update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    config["rule_files"] = [str(DEPLOY / "alerts.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(JOBS), f"deploy config jobs changed: {sorted(jobs)}"
    for name, job in jobs.items():
        job["scrape_interval"] = "1s"
        job["scrape_timeout"] = "1s"
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[name]}"]}]
    return config


def promtool(*args: str) -> str:
    result = subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def prometheus(config_path: Path, root: Path) -> Iterator[str]:
    port = free_port()
    command = [
        str(PROMETHEUS),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={root / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    server = Server(
        "prometheus",
        port,
        command,
        environment({}),
        root / "prometheus.log",
        ready_path="/-/ready",
        cwd=root,
    )
    try:
        yield server.start().wait_ready(timeout=30).url
    finally:
        server.stop()


def _scrape_time(value: str) -> float:
    # RFC 3339 with up to nanoseconds; Python keeps microseconds.
    head, _, tail = value.rstrip("Z").partition(".")
    stamp = dt.datetime.fromisoformat(head + ("." + tail[:6] if tail else "") + "+00:00")
    return stamp.timestamp()


def wait_for_scrapes(client: httpx.Client, after: float, count: int = 2) -> dict[str, Any]:
    """Wait until every job was scraped successfully ``count`` times after ``after`` (epoch
    seconds)."""
    seen: dict[str, set[str]] = {job: set() for job in JOBS}
    targets: dict[str, Any] = {}
    deadline = time.monotonic() + SCRAPES_TIMEOUT
    while time.monotonic() < deadline:
        answer = client.get("/api/v1/targets", params={"state": "active"}).json()
        for target in answer["data"]["activeTargets"]:
            job = target["labels"]["job"]
            targets[job] = target
            last = target.get("lastScrape", "")
            if (
                job in seen
                and target["health"] == "up"
                and last
                and not last.startswith("0001")
                and _scrape_time(last) > after
            ):
                seen[job].add(last)
        if all(len(stamps) >= count for stamps in seen.values()):
            return targets
        time.sleep(0.2)
    raise AssertionError(f"not scraped {count} times in {SCRAPES_TIMEOUT:.0f}s: {targets}")


def query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/query", params={"query": promql})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(client: httpx.Client, promql: str) -> float:
    result = query(client, promql)
    assert len(result) == 1, f"{promql}: {result}"
    return float(result[0]["value"][1])


def test_promtool_checks_deploy_config_and_rules(tmp_path: Path) -> None:
    _need(PROMTOOL)
    promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    out = promtool("check", "rules", str(DEPLOY / "alerts.yml"))
    assert "SUCCESS" in out
    derived = tmp_path / "prometheus.yml"
    derived.write_text(yaml.safe_dump(derived_config({"catalog": 1, "attribution": 2})))
    promtool("check", "config", str(derived))


def test_prometheus_scrapes_both_services(launcher: Launcher, tmp_path: Path) -> None:
    _need(PROMETHEUS)
    _need(PROMTOOL)
    catalog = launcher.service(
        "catalog", database_url=migrate("catalog", sqlite_url(tmp_path / "catalog.db"))
    )
    attribution = launcher.service(
        "attribution",
        database_url=migrate("attribution", sqlite_url(tmp_path / "attribution.db")),
        catalog_url=catalog.url,
        sync=True,
    )
    catalog.start()
    attribution.start()
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(
        yaml.safe_dump(derived_config({"catalog": catalog.port, "attribution": attribution.port}))
    )
    promtool("check", "config", str(config_path))
    with (
        prometheus(config_path, tmp_path) as prom_url,
        httpx.Client(base_url=prom_url, timeout=5.0) as prom,
    ):
        catalog.wait_ready()
        attribution.wait_ready()
        check_prometheus_sees_posted_events(prom, attribution.url)


def check_prometheus_sees_posted_events(prom: httpx.Client, attribution_url: str) -> None:
    """Post known batches, wait for two scrapes, compare Prometheus's view with what was sent."""
    # Three batches with known outcomes: new events, a retry with duplicates, some invalid.
    headers = bearer(token("t-prom", "events:write"))
    first = make_events("prom", 0, 12)
    second = first[:5] + make_events("prom", 12, 6)  # 5 duplicates, 6 new
    invalid = [
        {**make_events("prom", 900, 1)[0], "type": "teleport"},
        {**make_events("prom", 901, 1)[0], "occurred_at": "2024-05-01T12:00:00"},
        {"event_id": "prom-missing-fields"},
    ]
    third = make_events("prom", 18, 4) + invalid + make_events("prom", 18, 1)  # 1 repeat
    expected = {"accepted": 12 + 6 + 4, "duplicate": 5 + 1, "rejected": 3}
    with httpx.Client(base_url=attribution_url, timeout=10.0) as client:
        answers = [
            client.post("/v1/events", json={"events": batch}, headers=headers).json()
            for batch in (first, second, third)
        ]
    assert sum(a["accepted"] for a in answers) == expected["accepted"], answers
    assert sum(a["duplicates"] for a in answers) == expected["duplicate"], answers
    assert sum(len(a["rejected"]) for a in answers) == expected["rejected"], answers
    posted_at = time.time()

    targets = wait_for_scrapes(prom, after=posted_at, count=2)
    for job in JOBS:
        assert targets[job]["health"] == "up", targets[job]
        assert scalar(prom, f'up{{job="{job}"}}') == 1.0
    figures = {
        outcome: scalar(prom, f'sum(clipfunnel_events_received_total{{outcome="{outcome}"}})')
        for outcome in expected
    }
    assert figures == {k: float(v) for k, v in expected.items()}
    by_job = query(prom, "sum by (job) (clipfunnel_events_received_total)")
    assert [(r["metric"]["job"], float(r["value"][1])) for r in by_job] == [
        ("attribution", float(sum(expected.values())))
    ]
    posts = scalar(
        prom, 'sum(http_requests_total{job="attribution",route="/v1/events",method="POST"})'
    )
    assert posts == 3.0
    # The alert rules loaded and evaluate without error.
    groups = prom.get("/api/v1/rules").json()["data"]["groups"]
    assert groups, "no rule groups loaded"
    for group in groups:
        for rule in group["rules"]:
            assert rule["health"] != "err", rule
    print(
        f"\n[prometheus] up: catalog=1 attribution=1; events_received_total: {figures}; "
        f"POST /v1/events={posts:.0f}; rule groups={len(groups)}"
    )
