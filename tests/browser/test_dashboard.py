"""The dashboard in headless Chromium against both services with demo data.

Each check reads what the page shows and compares it with what the API answers to the very
requests the page made (captured from the browser, replayed with httpx).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.conftest import cell, choose, connect, press, wait_loaded
from tests.browser.formatting import (
    fmt_count,
    fmt_duration,
    fmt_int,
    fmt_money,
    fmt_pct,
    fmt_ratio,
)
from tests.browser.recording import Recorder, replay
from tests.browser.servers import Stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"
PLATFORMS = {
    "douyin": "Douyin",
    "kuaishou": "Kuaishou",
    "tiktok": "TikTok",
    "instagram": "Instagram",
    "youtube": "YouTube",
    "wechat_channels": "WeChat Channels",
    "bilibili": "Bilibili",
    "xiaohongshu": "Xiaohongshu",
    "other": "Other",
}
FORMATS = {"native": "Native", "pre_roll": "Pre-roll", "overlay": "Overlay", "banner": "Banner"}
STEP_LABELS = {"impression": "Impression", "view": "View", "click": "Click", "order": "Order"}
STEP_LABELS |= {"view_complete": "Complete view", "add_to_cart": "Add to cart"}


def open_dashboard(page: Page, stack: Stack) -> str:
    """Connect with a fresh reports:read token, wait for every card; returns the token."""
    token = stack.token()
    connect(page, stack.attribution_url, token)
    wait_loaded(page)
    banner = page.locator("#banner")
    assert banner.is_hidden(), banner.inner_text()
    return token


# --- what the page shows against what the API answers ------------------------------------


def check_funnel(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    seen = calls.last("/v1/funnels")
    answer = replay(api, seen).json()
    steps = answer["steps"]
    assert [s["type"] for s in steps] == [s["type"] for s in seen.body["steps"]]
    assert page.locator("#funnel-table tbody tr").count() == len(steps)
    assert page.locator("#funnel-chart g.funnel-step").count() == len(steps)
    for i, step in enumerate(steps):
        row = str(i)
        assert cell(page, "funnel-table", row, "step") == f"{i + 1}. {STEP_LABELS[step['type']]}"
        assert cell(page, "funnel-table", row, "users") == fmt_int(step["users"])
        assert cell(page, "funnel-table", row, "conversion_from_previous") == fmt_pct(
            step["conversion_from_previous"]
        )
        assert cell(page, "funnel-table", row, "conversion_from_start") == fmt_pct(
            step["conversion_from_start"]
        )
        assert cell(page, "funnel-table", row, "median_seconds_from_previous") == fmt_duration(
            step["median_seconds_from_previous"]
        )
        bar = page.locator(f'#funnel-chart g.funnel-step[data-step="{i}"]')
        assert bar.locator("text.val").text_content() == fmt_int(step["users"])
        if i:
            assert fmt_pct(step["conversion_from_previous"]) in str(bar.text_content())
    result: dict[str, Any] = answer
    return result


def check_formats(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    answer = replay(api, calls.last("/v1/reports/ads")).json()
    currency = answer["currency"]
    rows = answer["by_format"]
    assert page.locator("#formats-table tbody tr").count() == len(rows)
    headers = page.locator("#formats-table thead th").all_inner_texts()
    assert f"GMV ({currency})" in headers
    assert f"Spend ({currency})" in headers
    for row in rows:
        key = row["format"] or "none"
        assert cell(page, "formats-table", key, "format") == FORMATS.get(row["format"], "")
        for col, fmt in (("ctr", fmt_pct), ("cvr", fmt_pct), ("roas", fmt_ratio)):
            assert cell(page, "formats-table", key, col) == fmt(row[col]), col
        assert cell(page, "formats-table", key, "orders") == fmt_count(row["orders"])
        for col in ("cpa", "spend", "gmv"):
            assert cell(page, "formats-table", key, col) == fmt_money(row[col]), col
        # the bar chart shows the selected metric (ROAS by default) for each format
        bar = page.locator(f'#formats-chart g.bar-row[data-key="{key}"] text.val')
        assert bar.text_content() == fmt_ratio(row["roas"])
    result: dict[str, Any] = answer
    return result


def top_contents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-Decimal(r["gmv"]), r["content_id"]))


def check_contents(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    # The data-driven card also reads the contents under last touch; this is the chosen model's.
    model = page.input_value("#f-model")
    answer = replay(api, calls.last("/v1/reports/contents", model=model)).json()
    currency = answer["currency"]
    ranked = top_contents(answer["rows"])
    shown = page.locator("#contents-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.row)"
    )
    assert shown == [r["content_id"] for r in ranked[:10]]
    assert f"GPM ({currency})" in page.locator("#contents-table thead th").all_inner_texts()
    for row in ranked[:10]:
        key = row["content_id"]
        assert cell(page, "contents-table", key, "platform") == PLATFORMS.get(row["platform"], "—")
        assert cell(page, "contents-table", key, "views") == fmt_int(row["views"])
        assert cell(page, "contents-table", key, "clicks") == fmt_int(row["clicks"])
        assert cell(page, "contents-table", key, "ctr") == fmt_pct(row["ctr"])
        assert cell(page, "contents-table", key, "orders") == fmt_count(row["orders"])
        assert cell(page, "contents-table", key, "gmv") == fmt_money(row["gmv"])
        assert cell(page, "contents-table", key, "gpm") == fmt_money(row["gpm"])
    live = [r for r in ranked if r["kind"] == "live"]
    shown_live = page.locator("#live-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.row)"
    )
    assert shown_live == [r["content_id"] for r in live]
    for row in live:
        key = row["content_id"]
        assert cell(page, "live-table", key, "unique_viewers") == fmt_int(row["unique_viewers"])
        for col in ("gmv", "direct_gmv", "indirect_gmv", "gpm"):
            assert cell(page, "live-table", key, col) == fmt_money(row[col]), col
    result: dict[str, Any] = answer
    return result


def check_timeseries(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    gmv = replay(api, calls.last("/v1/reports/timeseries", metric="gmv")).json()
    orders = replay(api, calls.last("/v1/reports/timeseries", metric="orders")).json()
    assert page.locator("#gmv-chart li.dot").count() == len(gmv["points"])
    assert page.locator("#orders-chart li.dot").count() == len(orders["points"])
    assert page.locator("#timeseries-table tbody tr").count() == len(gmv["points"])
    for point in gmv["points"]:
        assert cell(page, "timeseries-table", point["start"], "gmv") == fmt_money(point["value"])
    for point in orders["points"]:
        assert cell(page, "timeseries-table", point["start"], "orders") == fmt_count(point["value"])
    return {"gmv": gmv, "orders": orders}


def check_datadriven(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    answer = replay(api, calls.last("/v1/attribution/data-driven")).json()
    assert answer["method"] == "markov"
    shown = page.locator("#datadriven-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.row)"
    )
    assert shown == [c["channel"] for c in answer["channels"]]
    for channel in answer["channels"][:5]:
        removal = fmt_pct(channel["removal_effect"])
        assert cell(page, "datadriven-table", channel["channel"], "removal_effect") == removal
    paths = page.locator("#paths-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.row)"
    )
    assert paths == [p["path"] for p in answer["top_paths"]]
    result: dict[str, Any] = answer
    return result


def check_everything(page: Page, api: httpx.Client, calls: Recorder) -> dict[str, Any]:
    return {
        "funnel": check_funnel(page, api, calls),
        "ads": check_formats(page, api, calls),
        "contents": check_contents(page, api, calls),
        "timeseries": check_timeseries(page, api, calls),
        "datadriven": check_datadriven(page, api, calls),
    }


def start_of_day(day: dt.date, zone: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), ZoneInfo(zone)).astimezone(dt.UTC)


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_first_visit_asks_for_a_token_and_nothing_else(page: Page, demo_stack: Stack) -> None:
    response = page.goto(f"{demo_stack.attribution_url}/dashboard")
    assert response is not None
    assert response.status == 200
    assert page.title() == "ClipFunnel dashboard"
    assert page.locator("#auth").is_visible()
    assert page.locator("#token-input").get_attribute("type") == "password"
    assert page.locator("#dashboard").is_hidden()
    assert page.locator("#banner").is_hidden()
    assert "reports:read" in page.locator("#auth").inner_text()


def test_dashboard_shows_the_numbers_the_api_returns(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder, tmp_path: Path
) -> None:
    open_dashboard(page, demo_stack)
    settings = api.get("/v1/settings").json()
    zone = settings["timezone"]

    # The default range: the last 30 days and today, whole days in the tenant's time zone.
    today = dt.datetime.now(ZoneInfo(zone)).date()
    ads_call = recorder.last("/v1/reports/ads")
    assert instant(ads_call.params["from"]) == start_of_day(today - dt.timedelta(days=30), zone)
    assert instant(ads_call.params["to"]) == start_of_day(today + dt.timedelta(days=1), zone)
    assert ads_call.params["model"] == settings["default_model"]
    funnel_call = recorder.last("/v1/funnels")
    steps = [s["type"] for s in funnel_call.body["steps"]]
    assert steps == ["impression", "view", "click", "order"]
    assert funnel_call.body["window_seconds"] == 7 * 86400
    assert "filters" not in funnel_call.body

    shown = check_everything(page, api, recorder)
    # The demo month is worth looking at: viewers, orders and every ad format show up.
    assert shown["funnel"]["steps"][0]["users"] > 0
    assert any(Decimal(r["gmv"]) > 0 for r in shown["contents"]["rows"])
    assert {r["format"] for r in shown["ads"]["by_format"]} >= {"native", "pre_roll", "overlay"}
    assert shown["datadriven"]["channels"], "the demo month has content journeys"
    assert settings["currency"] in page.locator("#tenant-info").inner_text()

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(PNG)
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_every_filter_refreshes_everything(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder
) -> None:
    open_dashboard(page, demo_stack)

    choose(page, "#f-model", "linear")
    assert recorder.last("/v1/reports/ads").params["model"] == "linear"
    # The contents card asks under the chosen model; the data-driven card under last touch.
    assert recorder.last("/v1/reports/contents", model="linear").params["from"]
    assert recorder.last("/v1/reports/contents", model="last_touch").params["from"]
    for metric in ("gmv", "orders"):
        assert recorder.last("/v1/reports/timeseries", metric=metric).params["model"] == "linear"
    check_everything(page, api, recorder)

    choose(page, "#f-platform", "douyin")
    assert recorder.last("/v1/funnels").body["filters"] == {"platform": "douyin"}
    assert recorder.last("/v1/reports/contents").params["platform"] == "douyin"
    shown = check_everything(page, api, recorder)
    assert {r["platform"] for r in shown["contents"]["rows"]} <= {"douyin"}

    page.select_option("#f-platform", "")
    choose(page, "#f-kind", "live")
    assert recorder.last("/v1/funnels").body["filters"] == {"content_kind": "live"}
    assert recorder.last("/v1/reports/contents").params["kind"] == "live"
    shown = check_everything(page, api, recorder)
    assert {r["kind"] for r in shown["contents"]["rows"]} <= {"live"}

    zone = api.get("/v1/settings").json()["timezone"]
    first = dt.datetime.now(ZoneInfo(zone)).date() - dt.timedelta(days=10)
    page.fill("#f-from", first.isoformat())
    wait_loaded(page)
    assert instant(recorder.last("/v1/reports/ads").params["from"]) == start_of_day(first, zone)
    assert instant(recorder.last("/v1/funnels").body["from"]) == start_of_day(first, zone)
    check_everything(page, api, recorder)


def test_the_funnel_steps_can_be_edited(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder
) -> None:
    open_dashboard(page, demo_stack)
    choose(page, "#step-1", "view_complete")
    press(page, "#add-step")
    press(page, 'button[aria-label="Remove step 3"]')  # the click
    choose(page, "#f-window", "86400")
    body = recorder.last("/v1/funnels").body
    assert [s["type"] for s in body["steps"]] == ["impression", "view_complete", "order", "order"]
    assert body["window_seconds"] == 86400
    check_funnel(page, api, recorder)
    # two steps at least: with two left, neither can be removed
    press(page, 'button[aria-label="Remove step 4"]')
    press(page, 'button[aria-label="Remove step 3"]')
    assert page.locator("#steps button[aria-label^='Remove']:not([disabled])").count() == 0
    check_funnel(page, api, recorder)


def test_each_table_downloads_as_csv_without_the_token_in_a_url(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder, tmp_path: Path
) -> None:
    token = open_dashboard(page, demo_stack)
    expected = {
        "formats": lambda: replay(
            api, recorder.last("/v1/reports/ads", format="csv", table="by_format")
        ),
        "ads": lambda: replay(api, recorder.last("/v1/reports/ads", format="csv")),
        "contents": lambda: replay(api, recorder.last("/v1/reports/contents", format="csv")),
        "live": lambda: replay(
            api, recorder.last("/v1/reports/contents", format="csv", kind="live")
        ),
        "gmv": lambda: replay(api, recorder.last("/v1/reports/timeseries", metric="gmv")),
        "orders": lambda: replay(api, recorder.last("/v1/reports/timeseries", metric="orders")),
    }
    for kind, answer in expected.items():
        with page.expect_download() as info:
            page.click(f'button[data-csv="{kind}"]')
        download = info.value
        assert download.url.startswith("blob:"), download.url
        assert download.suggested_filename.endswith(".csv")
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.read_bytes() == answer().content, kind
    # the funnel table is built from the funnel answer in the page
    with page.expect_download() as info:
        page.click('button[data-csv="funnel"]')
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    steps = replay(api, recorder.last("/v1/funnels")).json()["steps"]
    assert [(r["type"], int(r["users"])) for r in rows] == [(s["type"], s["users"]) for s in steps]

    assert page.locator("#banner").is_hidden()
    for seen in recorder.calls:
        assert token not in seen.url
        assert seen.headers["authorization"] == f"Bearer {token}"
    assert recorder.last("/v1/reports/ads", format="csv").headers["accept"] == "text/csv"


def test_the_token_lives_in_the_tab_only_until_forgotten(
    page: Page, browser: Browser, demo_stack: Stack
) -> None:
    token = open_dashboard(page, demo_stack)
    assert page.evaluate("sessionStorage.getItem('clipfunnel.token')") == token
    assert page.evaluate("localStorage.length") == 0
    assert token not in page.url
    assert token not in page.evaluate("document.cookie")
    assert "Tenant demo" in page.locator("#tenant-info").inner_text()

    page.reload()  # same tab: still connected
    wait_loaded(page)
    assert page.locator("#auth").is_hidden()
    assert page.locator("#funnel-table tbody tr").count() == 4

    page.click("#forget-token")
    assert page.evaluate("sessionStorage.getItem('clipfunnel.token')") is None
    assert page.locator("#auth").is_visible()
    assert page.locator("#dashboard").is_hidden()
    assert page.locator("#funnel-table tbody tr").count() == 0

    page.goto(f"{demo_stack.attribution_url}/dashboard")  # forgotten for good in this tab
    assert page.locator("#auth").is_visible()
    other = browser.new_page()  # another session never saw it
    try:
        other.goto(f"{demo_stack.attribution_url}/dashboard")
        assert other.locator("#auth").is_visible()
    finally:
        other.close()


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (None, "The token was refused (401"),
        (("events:write",), "reports:read scope"),
    ],
    ids=["bad-signature", "missing-scope"],
)
def test_a_bad_token_shows_a_readable_error(
    page: Page,
    demo_stack: Stack,
    tmp_path: Path,
    scopes: tuple[str, ...] | None,
    expected: str,
) -> None:
    token = "cf1.eyJ0aWQiOiJkZW1vIn0.forged" if scopes is None else demo_stack.token(*scopes)
    connect(page, demo_stack.attribution_url, token)
    banner = page.locator("#banner")
    banner.wait_for(state="visible")
    text = banner.inner_text()
    assert expected in text
    assert "clipfunnel token" in text or "reports:read" in text
    assert page.locator("#auth").is_visible()  # asked again for a token
    assert page.evaluate("sessionStorage.getItem('clipfunnel.token')") is None
    page.screenshot(path=str(tmp_path / "bad-token.png"), full_page=True)


def test_services_down_show_a_readable_error(
    page: Page, empty_stack: Stack, tmp_path: Path
) -> None:
    connect(page, empty_stack.attribution_url, empty_stack.token())
    wait_loaded(page)
    assert page.locator("#banner").is_hidden()
    # a tenant with no data yet: the page says so instead of drawing nothing
    assert "No viewer reached" in page.locator("#funnel-card").inner_text()
    assert "No shop is connected" in page.locator("#shops-card").inner_text()
    assert "No journey" in page.locator("#datadriven-card").inner_text()

    empty_stack.stop()
    press(page, "#refresh")
    banner = page.locator("#banner")
    assert banner.is_visible()
    assert "Cannot reach the ClipFunnel attribution service" in banner.inner_text()
    # Every card of the overview: none settles as if it had loaded.
    cards = page.locator("#overview section.card")
    assert cards.count() >= 7
    assert page.locator("#overview section.card[data-state='error']").count() == cards.count()
    assert page.locator("h1").is_visible()
    assert "see the message at the top" in page.locator("#formats-card").inner_text()

    with page.expect_event("requestfailed"):
        page.click('button[data-csv="ads"]')
    page.wait_for_function("!document.querySelector('button[data-csv=ads]').disabled")
    assert "Cannot reach" in banner.inner_text()
    page.screenshot(path=str(tmp_path / "services-down.png"), full_page=True)


def test_phone_sized_screen_has_one_column_and_no_sideways_scroll(
    browser: Browser, demo_stack: Stack, tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="en-US", is_mobile=True, has_touch=True
    )
    try:
        phone = context.new_page()
        errors: list[str] = []
        phone.on("pageerror", lambda error: errors.append(str(error)))
        open_dashboard(phone, demo_stack)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        boxes = {
            name: phone.locator(f"#{name}").bounding_box()
            for name in ("funnel-card", "formats-card", "contents-card")
        }
        xs = {round(box["x"]) for box in boxes.values() if box}
        assert len(xs) == 1, boxes  # stacked, not side by side
        for chart in ("#funnel-chart svg", "#formats-chart svg", "#gmv-chart canvas"):
            box = phone.locator(chart).bounding_box()
            assert box is not None, chart
            assert 0 <= box["x"] <= box["x"] + box["width"] <= 390, chart
        unlabeled = phone.evaluate(
            """[...document.querySelectorAll('input, select, button')]
                 .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                                && !e.textContent.trim())
                 .map((e) => e.outerHTML)"""
        )
        assert unlabeled == []
        phone.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        assert not errors
    finally:
        context.close()
