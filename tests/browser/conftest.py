"""Browser tests: headless Chromium (Debian's ``chromium``) driven by Playwright's Python API.

Playwright's own browser download is never used: the system Chromium is launched by path.
Tests marked ``browser`` are skipped, saying why, when ``/usr/bin/chromium`` or the
``playwright`` package is missing, unless ``CLIPFUNNEL_REQUIRE_BROWSER=1`` (CI), which turns
either into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.recording import Recorder, api_client
from tests.browser.servers import Stack, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, ViewportSize

# Debian's package; CLIPFUNNEL_CHROMIUM points elsewhere (e.g. /usr/bin/chromium-browser).
CHROMIUM = Path(os.environ.get("CLIPFUNNEL_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("CLIPFUNNEL_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_EVENTS = 100_000  # enough for every ad format to have credited orders at realistic prices
LAPTOP: ViewportSize = {"width": 1280, "height": 900}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium against running services")


def _missing_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install -y chromium, or set CLIPFUNNEL_CHROMIUM)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    return None


def require_browser() -> None:
    """Skip (or, with CLIPFUNNEL_REQUIRE_BROWSER=1, fail) when no browser can be driven."""
    reason = _missing_browser()
    if reason is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"CLIPFUNNEL_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"browser tests need headless Chromium: {reason}")


@pytest.fixture(autouse=True)
def _browser_available(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("browser") is not None:
        require_browser()


# Module scope: Playwright's sync driver runs its own event loop, so it is stopped before the
# asyncio tests of other modules run.
@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    require_browser()
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    instance = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
    )
    try:
        yield instance
    finally:
        instance.close()


class PageErrors(list[str]):
    """Uncaught script errors seen by a page; a test fails if any is left at its end."""


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    """A fresh tab (own session storage) at laptop size in the en-US locale."""
    context = browser.new_context(viewport=LAPTOP, locale="en-US", accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    tab.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield tab
    finally:
        context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


@contextlib.contextmanager
def demo_loaded(directory: Path, tenant: str, **demo: Any) -> Iterator[Stack]:
    """Both services in ``directory`` with a demo month (``demo``: the options of
    :func:`services.demo.load_demo`) loaded through the public APIs."""
    from services.demo import load_demo

    require_browser()
    stack = start_stack(directory, tenant=tenant)
    try:
        loading = load_demo(
            catalog_url=stack.catalog_url,
            attribution_url=stack.attribution_url,
            token=stack.token("admin"),
            **demo,
        )
        # Its own thread: Playwright's sync driver may already own this thread's event loop.
        with ThreadPoolExecutor(max_workers=1) as pool:
            summary = pool.submit(asyncio.run, loading).result()
        print(f"demo loaded: {summary}")
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Both services with a small demo month loaded through the public APIs."""
    with demo_loaded(
        tmp_path_factory.mktemp("demo-stack"), "demo", events=DEMO_EVENTS, seed=7
    ) as stack:
        yield stack


@pytest.fixture
def recorder(page: Page) -> Recorder:
    """Every API call the page makes from now on."""
    record = Recorder()
    page.on("request", record)
    return record


@pytest.fixture
def api(demo_stack: Stack) -> Iterator[httpx.Client]:
    with api_client(demo_stack) as client:
        yield client


@pytest.fixture
def empty_stack(tmp_path: Path) -> Iterator[Stack]:
    """Both services with no data, for tests that stop them."""
    stack = start_stack(tmp_path / "stack", tenant="empty")
    try:
        yield stack
    finally:
        stack.stop()


def connect(page: Page, base_url: str, token: str) -> None:
    """Open the dashboard and paste ``token`` as a user would."""
    page.goto(f"{base_url}/dashboard")
    page.fill("#token-input", token)
    page.click("#token-submit")


def wait_loaded(page: Page) -> None:
    """Until every card in view has settled (ready or error) after the latest load."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('#dashboard section.card')]
              .filter((c) => !c.closest('[hidden]'))
              .every((c) => c.dataset.state === 'ready' || c.dataset.state === 'error')""",
        timeout=60_000,
    )


def choose(page: Page, selector: str, value: str) -> None:
    """Select ``value`` in the ``selector`` drop-down, then wait until the cards settle."""
    page.select_option(selector, value)
    wait_loaded(page)


def press(page: Page, selector: str) -> None:
    """Click ``selector``, then wait until the cards settle."""
    page.click(selector)
    wait_loaded(page)


def cell(page: Page, table: str, row: str, col: str) -> str:
    """The text of one table cell (also when the table is folded away, as in <details>)."""
    locator = page.locator(f'#{table} tr[data-row="{row}"] [data-col="{col}"]')
    text: Any = locator.text_content()
    return str(text).strip()
