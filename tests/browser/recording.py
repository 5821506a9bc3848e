"""The API calls a page makes, captured from the browser to be replayed with httpx."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.browser.servers import Stack

if TYPE_CHECKING:
    from playwright.sync_api import Request


@dataclass
class Seen:
    """An API call the page made."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]
    url: str


def span(seen: Seen) -> tuple[Any, Any]:
    """The (from, to) a call asks for: in its query, or in its body (the funnel)."""
    source = seen.body if isinstance(seen.body, dict) else seen.params
    return source.get("from"), source.get("to")


@dataclass
class Recorder:
    calls: list[Seen] = field(default_factory=list)

    def __call__(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if not parts.path.startswith("/v1/"):
            return
        body = json.loads(request.post_data) if request.post_data else None
        self.calls.append(
            Seen(
                request.method,
                parts.path,
                dict(parse_qsl(parts.query)),
                body,
                request.headers,
                request.url,
            )
        )

    def last(self, path: str, *, previous: bool = False, **params: str) -> Seen:
        """The latest call to ``path`` with ``params`` for the range shown; with ``previous``,
        the one for the period before it (the page asks both, to show the change)."""
        found = [
            seen
            for seen in self.calls
            if seen.path == path and all(seen.params.get(k) == v for k, v in params.items())
        ]
        if not found:
            raise AssertionError(f"the page never called {path} {params}")
        latest = found[-1]
        for other in reversed(found[-4:-1]):
            if span(other)[0] == span(latest)[1]:  # latest is the previous period of other
                return latest if previous else other
            if span(latest)[0] == span(other)[1]:
                return other if previous else latest
        if previous:
            raise AssertionError(f"the page never asked {path} {params} for the previous period")
        return latest


def replay(api: httpx.Client, seen: Seen, **extra: str) -> httpx.Response:
    if seen.method == "POST":
        response = api.post(seen.path, json=seen.body)
    else:
        response = api.get(seen.path, params={**seen.params, **extra})
    assert response.status_code == 200, response.text
    return response


@contextlib.contextmanager
def api_client(stack: Stack) -> Iterator[httpx.Client]:
    """An httpx client of ``stack``'s attribution service with a reports:read token."""
    headers = {"Authorization": f"Bearer {stack.token()}"}
    with httpx.Client(base_url=stack.attribution_url, headers=headers, timeout=60) as client:
        yield client
