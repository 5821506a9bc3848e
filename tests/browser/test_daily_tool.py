"""The dashboard as a daily tool, in headless Chromium against the demo month.

Names instead of ids, the change against the previous period, the pages behind a row (a
content, a live room's timeline, an ad), links that restore a view in a fresh tab, the demo's
ROAS bands, and an automated accessibility check (axe-core, kept with the tests: it is never
served to users). Every view is written as a screenshot to ``var/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.conftest import LAPTOP, cell, connect, wait_loaded
from tests.browser.formatting import fmt_money, fmt_ratio
from tests.browser.recording import Recorder, replay
from tests.browser.servers import Stack
from tests.browser.test_dashboard import PNG

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
ID_LIKE = re.compile(r"^(vid-\d+|live-\d+|ad-\d+|camp-[a-z-]+|prod-\d+)$")


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(PNG)
    print(f"screenshot: {path}")


def axe_violations(page: Page) -> list[str]:
    """What axe-core finds wrong with the page as shown (WCAG 2 A/AA and best practices)."""
    page.evaluate(AXE.read_text())
    found: list[str] = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
              .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 5)
                .map((n) => n.target.join(' ')).join(', ')}`)"""
    )
    return found


def open_dashboard(page: Page, stack: Stack, hash_: str = "") -> str:
    token = stack.token()
    page.goto(f"{stack.attribution_url}/dashboard{hash_}")
    page.fill("#token-input", token)
    page.click("#token-submit")
    wait_loaded(page)
    assert page.locator("#banner").is_hidden(), page.locator("#banner").inner_text()
    return token


def today(api: httpx.Client) -> tuple[dt.date, str]:
    zone = api.get("/v1/settings").json()["timezone"]
    return dt.datetime.now(ZoneInfo(zone)).date(), zone


def view_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).fragment))


def column(page: Page, table: str, col: str) -> list[str]:
    texts: list[str] = page.locator(f"#{table} tbody [data-col='{col}']").all_inner_texts()
    return [t.strip() for t in texts]


def trend(diff: Decimal, better: str) -> str:
    if diff == 0:
        return "same"
    return "good" if (diff > 0) == (better == "up") else "bad"


def pct_text(now: Decimal, before: Decimal) -> str:
    if before == 0:
        return "0%" if now == 0 else "new"
    change = abs((now - before) / before) * 100
    sign = "+" if now > before else "−" if now < before else ""
    return f"{sign}{change.quantize(Decimal('0.1'), ROUND_HALF_UP):,}%"


def badge(page: Page, table: str, row: str, col: str) -> dict[str, Any]:
    node = page.locator(f'#{table} tr[data-row="{row}"] [data-col="{col}"] .delta')
    return {"trend": node.get_attribute("data-trend"), "text": node.inner_text()}


def test_the_demo_reads_in_names_with_changes_and_plausible_roas(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder
) -> None:
    open_dashboard(page, demo_stack)

    # ROAS per format from the ads report the page showed: native ahead, all 1-6x; CPM and
    # CPC as ad traffic costs on Douyin and Kuaishou.
    ads = replay(api, recorder.last("/v1/reports/ads")).json()
    roas = {row["format"]: row["roas"] for row in ads["by_format"] if row["format"]}
    assert set(roas) == {"native", "pre_roll", "overlay", "banner"}
    assert all(value is not None and 1 <= value <= 6 for value in roas.values()), roas
    assert roas["native"] == max(roas.values()), roas
    for fmt, value in roas.items():
        assert cell(page, "formats-table", fmt, "roas") == fmt_ratio(value)
        spend = next(r for r in ads["by_format"] if r["format"] == fmt)
        assert Decimal(20) <= Decimal(spend["cpm"]) <= Decimal(120), spend
        assert Decimal("0.3") <= Decimal(spend["cpc"]) <= Decimal(5), spend

    # Names, not ids; the id on hover.
    model = page.input_value("#f-model")
    contents = replay(api, recorder.last("/v1/reports/contents", model=model)).json()
    by_id = {row["content_id"]: row for row in contents["rows"]}
    shown = page.locator("#contents-table tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.row)"
    )
    assert shown
    for key in shown:
        row = by_id[key]
        assert cell(page, "contents-table", key, "content_id") == row["title"]
        hover = page.locator(f'#contents-table tr[data-row="{key}"] [data-col="content_id"]')
        assert key in str(hover.get_attribute("title"))
        assert cell(page, "contents-table", key, "account") == f"@{row['account_handle']}"
    for table in ("contents-table", "live-table", "adlist-table", "datadriven-table"):
        first = column(page, table, "content_id" if table != "adlist-table" else "ad_id")
        if table == "datadriven-table":
            first = column(page, table, "channel")
        assert first, table
        assert not [text for text in first if ID_LIKE.match(text)], (table, first)
    for ad in ads["rows"]:
        assert cell(page, "adlist-table", ad["ad_id"], "campaign") == ad["campaign_name"]
        assert cell(page, "adlist-table", ad["ad_id"], "product") == ad["product_title"]
        assert cell(page, "adlist-table", ad["ad_id"], "ad_id") == ad["ad_name"]
    for text in column(page, "paths-table", "path"):
        assert not any(ID_LIKE.match(part) for part in text.split(" → ")), text

    # Two weeks against the two before them: both inside the demo month.
    day, _ = today(api)
    page.fill("#f-to", day.isoformat())
    page.fill("#f-from", (day - dt.timedelta(days=13)).isoformat())
    wait_loaded(page)
    now_call = recorder.last("/v1/reports/contents", model=model)
    before_call = recorder.last("/v1/reports/contents", model=model, previous=True)
    assert before_call.params["to"] == now_call.params["from"]
    start = dt.datetime.fromisoformat(now_call.params["from"].replace("Z", "+00:00"))
    earlier = dt.datetime.fromisoformat(before_call.params["from"].replace("Z", "+00:00"))
    assert start - earlier == dt.timedelta(days=14)
    now = {r["content_id"]: r for r in replay(api, now_call).json()["rows"]}
    before = {r["content_id"]: r for r in replay(api, before_call).json()["rows"]}
    assert before, "the previous two weeks have data"
    headers = page.locator("#contents-table thead th").all_inner_texts()
    assert "GMV vs previous" in headers
    compared = 0
    for key in page.locator("#contents-table tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.row)"
    ):
        current = Decimal(now[key]["gmv"])
        previous = Decimal(before[key]["gmv"]) if key in before else Decimal(0)
        shown_badge = badge(page, "contents-table", key, "gmv_change")
        assert shown_badge["trend"] == trend(current - previous, "up"), (key, shown_badge)
        assert shown_badge["text"].split(" ")[1] == pct_text(current, previous), shown_badge
        assert fmt_money(f"{abs(current - previous):.2f}") in shown_badge["text"]
        compared += previous > 0
    assert compared, "some content sold in both periods"
    # The tiles: totals of the same answers; CPA down would be good, GMV up is.
    gmv_now = sum((Decimal(r["gmv"]) for r in now.values()), Decimal(0))
    gmv_before = sum((Decimal(r["gmv"]) for r in before.values()), Decimal(0))
    tile = page.locator('#kpi-tiles [data-tile="gmv"] .delta')
    assert tile.get_attribute("data-trend") == trend(gmv_now - gmv_before, "up")
    ads_now = replay(api, recorder.last("/v1/reports/ads")).json()
    ads_before = replay(api, recorder.last("/v1/reports/ads", previous=True)).json()

    def cpa(answer: dict[str, Any]) -> Decimal:
        spend = sum((Decimal(r["spend"]) for r in answer["by_format"]), Decimal(0))
        orders = sum((Decimal(str(r["orders"])) for r in answer["by_format"]), Decimal(0))
        return spend / orders

    cpa_tile = page.locator('#kpi-tiles [data-tile="cpa"] .delta')
    assert cpa_tile.get_attribute("data-trend") == trend(cpa(ads_now) - cpa(ads_before), "down")
    formats_badge = badge(page, "formats-table", "native", "roas_change")
    assert formats_badge["trend"] in ("good", "bad", "same")

    # Data-driven credit and the frequent paths against the same answer for the weeks before.
    markov_now = replay(api, recorder.last("/v1/attribution/data-driven")).json()
    markov_before = replay(api, recorder.last("/v1/attribution/data-driven", previous=True)).json()
    assert "Markov GMV vs previous" in page.locator("#datadriven-table thead th").all_inner_texts()
    earlier_gmv = {c["channel"]: Decimal(str(c["revenue"])) for c in markov_before["channels"]}
    assert markov_now["channels"], "these weeks have content journeys"
    assert earlier_gmv, "the weeks before have content journeys"
    for channel in markov_now["channels"]:
        current = Decimal(str(channel["revenue"]))
        previous = earlier_gmv.get(channel["channel"], Decimal(0))
        shown_badge = badge(page, "datadriven-table", channel["channel"], "revenue_change")
        assert shown_badge["trend"] == trend(current - previous, "up"), (channel, shown_badge)
        assert shown_badge["text"].split(" ")[1] == pct_text(current, previous), shown_badge
    assert "Converting vs previous" in page.locator("#paths-table thead th").all_inner_texts()
    earlier_paths = {p["path"]: p["conversions"] for p in markov_before["top_paths"]}
    listed_all = len(earlier_paths) < 20  # the answer lists the 20 most frequent paths
    known = 0
    for path in markov_now["top_paths"]:
        shown_badge = badge(page, "paths-table", path["path"], "conversions_change")
        if path["path"] not in earlier_paths and not listed_all:
            assert shown_badge["text"] == "—", shown_badge  # not among the earlier top paths
            continue
        current, previous = (
            Decimal(path["conversions"]),
            Decimal(earlier_paths.get(path["path"], 0)),
        )
        assert shown_badge["trend"] == trend(current - previous, "up"), (path, shown_badge)
        assert shown_badge["text"].split(" ")[1] == pct_text(current, previous), shown_badge
        known += 1
    assert known, "some frequent path of these weeks is known in the weeks before"
    assert axe_violations(page) == []
    shoot(page, "overview-compared")


def test_a_row_opens_its_page_and_a_live_room_its_timeline(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder
) -> None:
    open_dashboard(page, demo_stack)
    overview = page.url
    key = page.locator("#contents-table tbody tr").first.get_attribute("data-row")
    assert key
    title = cell(page, "contents-table", key, "content_id")
    page.click(f'#contents-table tr[data-row="{key}"] a.drill')
    wait_loaded(page)
    assert view_of(page.url)["page"] == "content"
    assert view_of(page.url)["id"] == key
    assert page.locator("#overview").is_hidden()
    assert page.locator("#page-title").inner_text() == title
    assert title in page.title()
    assert recorder.last("/v1/funnels").body["filters"] == {"content_id": key}
    assert recorder.last("/v1/funnels", previous=True).body["filters"] == {"content_id": key}
    assert "Users vs previous" in page.locator("#page-funnel-table thead th").all_inner_texts()
    tiles = page.locator("#page-tiles .tile")
    assert tiles.count() >= 6
    assert tiles.locator(".delta").count() == tiles.count()
    for metric in ("gmv", "orders"):
        assert recorder.last("/v1/reports/timeseries", metric=metric).params["content_id"] == key
    detail = replay(api, recorder.last(f"/v1/reports/contents/{key}")).json()
    rows = page.locator("#page-orders-table tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.row)"
    )
    assert rows == [o["order_id"] for o in detail["orders"]]
    assert detail["orders"], "the top content has credited orders"
    assert column(page, "page-products-table", "product_id") == [
        p["title"] for p in detail["products"]
    ]
    # An order's explanation: its touches, windows and weights.
    order = detail["orders"][0]["order_id"]
    page.click(f'#page-orders-table tr[data-row="{order}"] button')
    page.wait_for_selector(f'tr.explain[data-explains="{order}"]')
    why = replay(api, recorder.last(f"/v1/orders/{order}/attribution")).json()
    touches = page.locator(f'tr.explain[data-explains="{order}"] li')
    assert touches.count() == len(why["credits"])
    text = touches.first.inner_text()
    assert "before payment" in text
    assert "window" in text
    assert "weight" in text
    assert axe_violations(page) == []
    shoot(page, "content-page")

    page.go_back()  # the browser's Back returns to the overview
    wait_loaded(page)
    assert page.locator("#overview").is_visible()
    assert "page" not in view_of(page.url)
    assert page.url == overview

    # A live room, opened from the keyboard.
    live = page.locator("#live-table tbody tr").first.get_attribute("data-row")
    assert live
    page.focus(f'#live-table tr[data-row="{live}"] a.drill')
    page.keyboard.press("Enter")
    wait_loaded(page)
    assert view_of(page.url)["id"] == live
    assert page.locator("#page-timeline-card").is_visible()
    timeline = replay(api, recorder.last(f"/v1/reports/live/{live}/timeline")).json()
    minutes = timeline["minutes"]
    assert len(minutes) >= 60
    assert page.locator("#timeline-entries-chart li.dot").count() == len(minutes)
    assert page.locator("#timeline-gmv-chart li.dot").count() == len(minutes)
    assert page.locator("#timeline-entries-chart canvas").count() == 1
    pins = page.locator("#timeline-pins li").evaluate_all("ls => ls.map(l => l.dataset.product)")
    assert pins == [p["product_id"] for p in timeline["pinned"]]
    assert pins, "the demo's live rooms pin products"
    busy = [m for m in minutes if m["entries"] or m["clicks"] or m["orders"]]
    assert page.locator("#timeline-table tbody tr").count() == len(busy)
    entries = sum(m["entries"] for m in minutes)
    assert f"{entries:,} entries" in page.locator("#timeline-summary").inner_text()
    assert axe_violations(page) == []
    shoot(page, "live-room-timeline")

    # An ad's page: its funnel and days by ad, its content one click up.
    page.go_back()
    wait_loaded(page)
    ad = page.locator("#adlist-table tbody tr").first.get_attribute("data-row")
    assert ad
    name = cell(page, "adlist-table", ad, "ad_id")
    page.click(f'#adlist-table tr[data-row="{ad}"] a.drill')
    wait_loaded(page)
    assert view_of(page.url) | {"page": "ad", "id": ad} == view_of(page.url)
    assert page.locator("#page-title").inner_text() == name
    assert recorder.last("/v1/funnels").body["filters"] == {"ad_id": ad}
    assert recorder.last("/v1/reports/timeseries", metric="gmv").params["ad_id"] == ad
    assert page.locator("#page-up a").count() == 1
    assert axe_violations(page) == []
    shoot(page, "ad-page")


def test_a_shared_link_restores_the_view_in_a_fresh_tab(
    page: Page, browser: Browser, demo_stack: Stack, api: httpx.Client
) -> None:
    token = open_dashboard(page, demo_stack)
    day, _ = today(api)
    page.select_option("#f-platform", "douyin")
    wait_loaded(page)
    page.select_option("#f-model", "linear")
    wait_loaded(page)
    page.fill("#f-from", (day - dt.timedelta(days=20)).isoformat())
    wait_loaded(page)
    key = page.locator("#contents-table tbody tr").first.get_attribute("data-row")
    assert key
    page.click(f'#contents-table tr[data-row="{key}"] a.drill')
    wait_loaded(page)
    link = page.url
    assert token not in link
    expected = {
        "page": "content",
        "id": key,
        "platform": "douyin",
        "model": "linear",
        "from": (day - dt.timedelta(days=20)).isoformat(),
        "to": page.input_value("#f-to"),
    }
    assert view_of(link) == expected
    title = page.locator("#page-title").inner_text()

    context = browser.new_context(viewport=LAPTOP, locale="en-US")
    errors: list[str] = []
    try:
        colleague = context.new_page()
        colleague.on("pageerror", lambda error: errors.append(str(error)))
        colleague.goto(link)
        assert colleague.locator("#auth").is_visible()  # their own token, not the link's
        colleague.fill("#token-input", demo_stack.token())
        colleague.click("#token-submit")
        wait_loaded(colleague)
        assert view_of(colleague.url) == expected
        assert colleague.input_value("#f-platform") == "douyin"
        assert colleague.input_value("#f-model") == "linear"
        assert colleague.input_value("#f-from") == expected["from"]
        assert colleague.input_value("#f-to") == expected["to"]
        assert colleague.locator("#page-title").inner_text() == title
        assert colleague.locator("#overview").is_hidden()
        shoot(colleague, "shared-link")
        # Back in the colleague's tab goes to the overview with the same filters.
        colleague.click("#page-back")
        wait_loaded(colleague)
        assert "page" not in view_of(colleague.url)
        assert view_of(colleague.url)["platform"] == "douyin"
        assert colleague.locator("#contents-table tbody tr").count() > 0
        # Someone of another tenant with the same link: told what is missing, nothing shown.
        stranger = browser.new_context(viewport=LAPTOP, locale="en-US")
        try:
            tab = stranger.new_page()
            tab.goto(link)
            tab.fill("#token-input", demo_stack.token(tenant="someone-else"))
            tab.click("#token-submit")
            wait_loaded(tab)
            banner = tab.locator("#banner")
            assert banner.is_visible()
            assert "this tenant's catalog does not have" in banner.inner_text()
            assert tab.locator("#page-orders-table tbody tr").count() == 0
        finally:
            stranger.close()
    finally:
        context.close()
    assert not errors


def test_a_fresh_tab_on_the_overview_link_restores_filters_and_steps(
    browser: Browser, demo_stack: Stack
) -> None:
    link = (
        f"{demo_stack.attribution_url}/dashboard#kind=live&model=first_touch"
        "&window=86400&steps=impression,click,order"
    )
    context = browser.new_context(viewport=LAPTOP, locale="en-US")
    try:
        tab = context.new_page()
        connect(tab, demo_stack.attribution_url, demo_stack.token())
        tab.goto(link)
        wait_loaded(tab)
        assert tab.input_value("#f-kind") == "live"
        assert tab.input_value("#f-model") == "first_touch"
        assert tab.input_value("#f-window") == "86400"
        assert tab.locator("#steps select").evaluate_all("ss => ss.map(s => s.value)") == [
            "impression",
            "click",
            "order",
        ]
        shoot(tab, "overview-from-link")
    finally:
        context.close()
