"""The content operations cards in headless Chromium: experiment, replies, 4C scorecard.

Both services run with the demo month and its content operations (an experiment of two
cuts, replies and DMs, a Q&A week). Each check compares what the page shows with what the API
answers to the very request the page made (captured from the browser, replayed with httpx).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.browser.conftest import cell, connect, demo_loaded, wait_loaded
from tests.browser.formatting import NA, fmt_duration, fmt_int, fmt_money, fmt_pct
from tests.browser.recording import api_client
from tests.browser.servers import Stack

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Both services with a small demo month and its content operations."""
    directory = tmp_path_factory.mktemp("ops-stack")
    with demo_loaded(directory, "ops", events=6_000, seed=7, operations=True) as stack:
        yield stack


class Calls(list[tuple[str, dict[str, str]]]):
    """The API paths (and query parameters) the page asked for, in order."""

    def __call__(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.path.startswith("/v1/"):
            self.append((parts.path, dict(parse_qsl(parts.query))))

    def last(self, path: str, **params: str) -> dict[str, str]:
        for seen, query in reversed(self):
            if seen == path and all(query.get(k) == v for k, v in params.items()):
                return query
        raise AssertionError(f"the page never called {path} {params}")


@pytest.fixture
def api(ops_stack: Stack) -> Iterator[httpx.Client]:
    with api_client(ops_stack) as client:
        yield client


@pytest.fixture
def calls(page: Page, ops_stack: Stack) -> Calls:
    seen = Calls()
    page.on("request", seen)
    connect(page, ops_stack.attribution_url, ops_stack.token())
    wait_loaded(page)
    banner = page.locator("#banner")
    assert banner.is_hidden(), banner.inner_text()
    return seen


def get(api: httpx.Client, path: str, params: dict[str, str] | None = None) -> Any:
    response = api.get(path, params=params or {})
    assert response.status_code == 200, response.text
    return response.json()


def signed_pct(value: float) -> str:
    text = f"{Decimal(repr(value * 100)).quantize(Decimal('0.1')):,}%"
    return f"+{text}" if value > 0 else text


def test_the_experiment_shows_its_variants_intervals_and_a_verdict(
    page: Page, calls: Calls, api: httpx.Client
) -> None:
    (experiment,) = get(api, "/v1/experiments")["experiments"]
    path = f"/v1/experiments/{experiment['experiment_id']}/results"
    calls.last(path)
    results = get(api, path)
    control, variant = results["variants"]
    vs = variant["vs_control"]
    chance, p = vs["chance_to_win"], vs["p_value"]
    significance = "significant at 5 %" if p < 0.05 else "not yet significant at 5 %"
    expected = (
        f"{variant['key']} is better with {round(chance * 100)} % chance; "
        f"p = {p:.3f} — {significance}"
    )
    verdict = page.locator(f'#experiment-verdicts .verdict[data-variant="{variant["key"]}"]')
    assert verdict.inner_text() == expected
    assert "B is better with 9" in expected  # the demo's cut B: ~97 %, not yet significant
    assert page.locator("#experiment-pick").input_value() == experiment["experiment_id"]
    for row in (control, variant):
        assert cell(page, "experiment-table", row["key"], "units") == fmt_int(row["units"])
        assert cell(page, "experiment-table", row["key"], "rate") == fmt_pct(row["rate"])
    low, high = vs["ci95"]
    shown = cell(page, "experiment-table", variant["key"], "ci95")
    assert shown == f"{signed_pct(low)} … {signed_pct(high)}"
    assert cell(page, "experiment-table", control["key"], "ci95") == NA
    assert page.locator('#experiment-intervals g.interval[data-variant="B"] circle').count() == 1


def test_the_replies_card_equals_the_interactions_report(
    page: Page, calls: Calls, api: httpx.Client
) -> None:
    query = calls.last("/v1/reports/interactions")
    report = get(api, "/v1/reports/interactions", query)
    totals = report["totals"]
    assert totals["comments"] > 0
    assert totals["dms"] > 0
    facts = {
        "comments": fmt_int(totals["comments"]),
        "reply_rate_1h": fmt_pct(totals["reply_rate_1h"]),
        "median_reply_seconds": fmt_duration(totals["median_reply_seconds"]),
        "unanswered_over_24h": fmt_int(totals["unanswered_over_24h"]),
        "dm_reply_rate": fmt_pct(totals["dm_reply_rate"]),
    }
    for key, text in facts.items():
        assert page.locator(f'#interactions-totals [data-fact="{key}"] dd').inner_text() == text
    rows = page.locator("#interactions-table tbody tr")
    assert rows.count() == len(report["accounts"]) > 0
    for account in report["accounts"]:
        key = account["account_id"]
        assert cell(page, "interactions-table", key, "comments") == fmt_int(account["comments"])
        assert cell(page, "interactions-table", key, "reply_rate_24h") == fmt_pct(
            account["reply_rate_24h"]
        )
        assert cell(page, "interactions-table", key, "p90_reply_seconds") == fmt_duration(
            account["p90_reply_seconds"]
        )


def test_the_scorecard_per_level_and_group(page: Page, calls: Calls, api: httpx.Client) -> None:
    query = calls.last("/v1/reports/scorecard", level="account")
    card = get(api, "/v1/reports/scorecard", query)
    assert page.locator("#scorecard-table tbody tr").count() == len(card["items"]) > 0
    for item in card["items"]:
        score = item["consumer"]["engagement_rate"]
        text = cell(page, "scorecard-table", item["id"], "engagement_rate")
        assert text.startswith(fmt_pct(score["value"]))
        if score["percentile"] is not None:
            assert f"P{round(score['percentile'])}" in text

    page.select_option("#scorecard-group", "cost")
    item = card["items"][0]
    cpm = item["cost"]["cpm"]["value"]
    assert cell(page, "scorecard-table", item["id"], "cpm").startswith(fmt_money(cpm))
    header = page.locator("#scorecard-table thead th").nth(1).inner_text()
    assert header == f"CPM ({card['currency']})"

    page.select_option("#scorecard-level", "content")
    page.wait_for_function(
        "() => document.getElementById('scorecard-card').dataset.state === 'ready'"
    )
    contents = get(
        api, "/v1/reports/scorecard", calls.last("/v1/reports/scorecard", level="content")
    )
    assert page.locator("#scorecard-table tbody tr").count() == len(contents["items"])
    assert page.locator("#scorecard-table thead th").first.inner_text() == "Content"
    first = contents["items"][0]
    assert cell(page, "scorecard-table", first["id"], "item").endswith(f"({first['id']})")
