"""A simulated month of short-video commerce: generated here, posted through the public APIs.

``generate`` builds the month (pure, seeded); ``load_demo`` posts the demo month to running
services. The benchmark sends the ``LOAD`` scenario of the same generator.

The modules, by concern: ``world`` (catalog objects and their request bodies), ``shop`` and
``narrative`` (the demo's fixed shop), ``synthetic`` (a world that grows with the month),
``timeline`` (time units, when sessions happen), ``viewers`` (a session's drop-off),
``orders`` (orders, cancellations, refunds), ``ids``, ``wire`` (text of instants and money),
``month`` (the generator and its scenarios) and ``post`` (the HTTP side).
"""

from __future__ import annotations

import datetime as dt

import httpx

from services.demo.month import DEMO, LOAD, Month, Scenario, generate
from services.demo.operations import post_operations
from services.demo.post import Api, DemoError, LoadReport, load
from services.demo.timeline import demo_anchor

__all__ = [
    "DEMO",
    "LOAD",
    "DemoError",
    "LoadReport",
    "Month",
    "Scenario",
    "demo_anchor",
    "generate",
    "load_demo",
]

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


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
    operations: bool = False,
) -> LoadReport:
    """Generate the demo month for ``seed`` and post it; the token needs the tenant's admin
    scope. Raises DemoError naming a failed request; ``str()`` of the report summarises it.

    The transports let tests route to in-process ASGI apps; ``now`` pins the demo's month.
    ``operations`` adds the content operations (``services.demo.operations``): an experiment,
    replies and DMs, an engagement activity.
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
        report = await load(data, catalog, attribution, concurrency=concurrency)
        if operations:
            await post_operations(Api(catalog, "catalog"), Api(attribution, "attribution"), data)
        return report
