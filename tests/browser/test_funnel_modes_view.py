"""The funnel card's modes in headless Chromium against both services with demo data: the
order, optional steps, held properties and exclusions go into the funnel request; the
time-to-convert histogram, the conversion trend and the download of the users who dropped
off show what the API answers to the very requests the page made."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import wait_loaded
from tests.browser.formatting import fmt_int
from tests.browser.recording import Recorder, replay
from tests.browser.servers import Stack
from tests.browser.test_dashboard import check_funnel, open_dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


def check_extras(page: Page, api: httpx.Client, recorder: Recorder) -> dict[str, Any]:
    """The histogram and the trend against the API's answers to the page's own requests."""
    funnel = recorder.last("/v1/funnels").body
    timed = recorder.last("/v1/funnels/time-to-convert")
    trend = recorder.last("/v1/funnels/trends")
    assert timed.body == funnel
    assert {k: v for k, v in trend.body.items() if k != "interval"} == funnel
    histogram = replay(api, timed).json()
    bins = page.locator("#ttc-chart g.bin")
    assert bins.count() == len(histogram["bins"])
    for i, b in enumerate(histogram["bins"]):
        shown = page.locator(f'#ttc-chart g.bin[data-bin="{i}"]')
        assert shown.get_attribute("data-users") == str(b["users"])
        assert shown.locator("text.val").text_content() == fmt_int(b["users"])
    points = replay(api, trend).json()["points"]
    assert page.locator("#trend-chart li[data-point]").count() == len(points)
    return {"histogram": histogram, "points": points, "interval": trend.body["interval"]}


def test_the_funnel_modes_go_into_the_request_and_their_charts_show_the_answers(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder
) -> None:
    open_dashboard(page, demo_stack)
    body = recorder.last("/v1/funnels").body
    assert not {"order", "exclusions", "hold_constant"} & body.keys()
    assert not any(step.get("optional") for step in body["steps"])
    check_funnel(page, api, recorder)
    shown = check_extras(page, api, recorder)
    assert shown["histogram"]["users"] > 0, "the demo month has conversions"
    assert shown["interval"] == "day"

    page.select_option("#f-order", "strict")
    wait_loaded(page)
    assert recorder.last("/v1/funnels").body["order"] == "strict"
    check_funnel(page, api, recorder)
    check_extras(page, api, recorder)

    page.select_option("#f-order", "ordered")
    wait_loaded(page)
    page.check("#optional-1")  # the view may be skipped
    wait_loaded(page)
    page.check("#hold-content")
    wait_loaded(page)
    page.click("#add-exclusion")
    wait_loaded(page)
    body = recorder.last("/v1/funnels").body
    assert "order" not in body
    assert [bool(step.get("optional")) for step in body["steps"]] == [False, True, False, False]
    assert body["hold_constant"] == ["content_id"]
    assert body["exclusions"] == [{"type": "like", "from_step": 0, "to_step": 3}]
    check_funnel(page, api, recorder)
    check_extras(page, api, recorder)

    page.select_option("#exclusion-type-0", "share")
    wait_loaded(page)
    assert recorder.last("/v1/funnels").body["exclusions"][0]["type"] == "share"
    page.click('button[aria-label="Remove exclusion 1"]')
    wait_loaded(page)
    assert "exclusions" not in recorder.last("/v1/funnels").body

    # Any order: no time to convert (the histogram says why), and no optional steps.
    page.select_option("#f-order", "unordered")
    wait_loaded(page)
    body = recorder.last("/v1/funnels").body
    assert body["order"] == "unordered"
    assert not any(step.get("optional") for step in body["steps"])
    assert page.locator("#ttc-chart g.bin").count() == 0
    assert "no time to convert" in page.locator('.card-state[data-for="ttc"]').inner_text()
    check_funnel(page, api, recorder)
    assert page.locator("#banner").is_hidden()


def test_the_trend_follows_its_period_and_the_dropped_users_download(
    page: Page, demo_stack: Stack, api: httpx.Client, recorder: Recorder, tmp_path: Path
) -> None:
    token = open_dashboard(page, demo_stack)
    page.select_option("#f-trend-interval", "week")
    wait_loaded(page)
    assert check_extras(page, api, recorder)["interval"] == "week"

    page.select_option("#dropped-step", "2")  # dropped off before the click
    with page.expect_download() as info:
        page.click("#download-dropped")
    download = info.value
    assert download.url.startswith("blob:"), download.url
    assert download.suggested_filename == "clipfunnel-dropped-before-step-3.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    seen = recorder.last("/v1/funnels/users", format="csv")
    assert seen.body["step"] == 2
    assert seen.body["status"] == "dropped"
    assert seen.headers["authorization"] == f"Bearer {token}"
    assert token not in seen.url
    expected = api.post("/v1/funnels/users", params={"format": "csv"}, json=seen.body)
    assert expected.status_code == 200, expected.text
    assert saved.read_bytes() == expected.content
    lines = saved.read_text().splitlines()
    assert lines[0] == "user_id"
    assert len(lines) > 1, "some demo viewers drop off before a click"
