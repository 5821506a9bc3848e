"""Demo data: a realistic month of short-video commerce, posted through the public APIs."""

from __future__ import annotations

import datetime as dt

import httpx

from services.demo.generate import DemoData, demo_anchor, generate
from services.demo.post import DemoError, LoadReport, load

__all__ = [
    "DemoData",
    "DemoError",
    "LoadReport",
    "demo_anchor",
    "generate",
    "load_demo",
    "run_demo",
]

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


async def run_demo(
    *,
    catalog_url: str,
    attribution_url: str,
    token: str,
    events: int = 100_000,
    seed: int = 7,
    now: dt.datetime | None = None,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    attribution_transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = 4,
) -> LoadReport:
    """Generate the demo for ``seed`` and post it; the token needs the tenant's admin scope.

    The transports let tests route to in-process ASGI apps; ``now`` pins the demo's month.
    """
    data = generate(seed, events, demo_anchor(now))
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(
            base_url=catalog_url, transport=catalog_transport, headers=headers, timeout=TIMEOUT
        ) as catalog,
        httpx.AsyncClient(
            base_url=attribution_url,
            transport=attribution_transport,
            headers=headers,
            timeout=TIMEOUT,
        ) as attribution,
    ):
        return await load(data, catalog, attribution, concurrency=concurrency)


async def load_demo(
    *,
    catalog_url: str,
    attribution_url: str,
    token: str,
    events: int = 100_000,
    seed: int = 7,
    now: dt.datetime | None = None,
    catalog_transport: httpx.AsyncBaseTransport | None = None,
    attribution_transport: httpx.AsyncBaseTransport | None = None,
    concurrency: int = 4,
) -> str:
    """Post the demo and return a short human summary; raises DemoError naming a failed request."""
    report = await run_demo(
        catalog_url=catalog_url,
        attribution_url=attribution_url,
        token=token,
        events=events,
        seed=seed,
        now=now,
        catalog_transport=catalog_transport,
        attribution_transport=attribution_transport,
        concurrency=concurrency,
    )
    return report.summary()
