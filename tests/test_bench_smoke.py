"""The benchmark suite runs end to end (quick mode, SQLite) and writes complete JSON.

Benchmarks are not tests: nothing here looks at how fast anything was, only that every
section was measured (a number) or explicitly reported as not measurable ("n/a …").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench.runner import END, MODES, SECTIONS
from services.demo import LOAD, generate
from services.demo.post import event_batches

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPECTED_KEYS = {
    "ingest": {"http_events_per_s", "baseline_rows_per_s", "ratio_http_to_baseline"},
    "orders": {
        "open_loop_achieved_per_s",
        "open_loop_p50_ms",
        "open_loop_p99_ms",
        "closed_loop_per_s",
        "closed_loop_p50_ms",
        "closed_loop_p99_ms",
    },
    "funnel": {
        "default_ms",
        "platform_filter_ms",
        "content_filter_ms",
        "greedy_sql_ms",
        "ratio_exact_to_greedy",
        *(f"mode_{name}_ms" for name in MODES),
        *(f"ratio_mode_{name}_to_plain" for name in MODES),
    },
    "reports": {"ads_ms", "contents_ms", "timeseries_ms"},
}


def _numeric_or_na(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and value.startswith("n/a")


def test_dataset_is_deterministic_and_valid_json() -> None:
    first, second = generate(3, 2_000, END, LOAD), generate(3, 2_000, END, LOAD)
    assert event_batches(first.events) == event_batches(second.events)
    assert first.unique_events == 2_000
    assert len({event.event_id for event in first.events}) == 2_000
    body = orjson.loads(event_batches(first.events, size=1000)[0])
    assert 1 <= len(body["events"]) <= 1000
    assert first.orders, "the data set has orders"


@pytest.mark.slow
def test_quick_benchmark_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    command = ["bench", "--quick", "--db", "sqlite", "--json", str(output)]
    completed = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "ingest ratio HTTP / baseline" in completed.stdout

    document = orjson.loads(output.read_bytes())
    assert document["meta"]["command"].startswith("python -m bench --quick")
    assert document["meta"]["dataset"]["unique_events"] == 20_000
    result = document["results"]["sqlite"]
    assert result["runs_completed"] == 1
    median = result["median"]
    assert set(SECTIONS) <= set(median)
    for section in SECTIONS:
        values = median[section]
        assert values, f"section {section} is empty"
        missing = EXPECTED_KEYS[section] - set(values)
        assert not missing, f"{section} lacks {sorted(missing)}"
        bad = {k: v for k, v in values.items() if not _numeric_or_na(v)}
        assert not bad, f"{section}: not a number nor n/a: {bad}"


def test_the_data_driven_benchmark_runs_small() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.datadriven", "--users", "300", "--events", "3000"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3,000 touches")
    steps = ("baseline: sort touches", "build paths", "markov order 1", "shapley", "paths + markov")
    for step in steps:
        assert any(line.startswith(step) for line in lines), (step, done.stdout)
