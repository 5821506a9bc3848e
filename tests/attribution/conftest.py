"""Fixtures shared by the attribution tests."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from services.attribution.credit import reattribution
from tests.attribution.funnel_data import World, build_world, fixed_clock
from tests.conftest import TokenFactory

LateCalls = list[tuple[str, list[reattribution.StoredTouch]]]


@pytest.fixture
def late_data_calls(monkeypatch: pytest.MonkeyPatch) -> LateCalls:
    """What each call of the late-data hook got, (tenant, new touches); the hook does nothing."""
    calls: LateCalls = []

    async def spy(
        session: object, tenant_id: str, touches: Iterable[reattribution.StoredTouch]
    ) -> int:
        calls.append((tenant_id, list(touches)))
        return 0

    monkeypatch.setattr(reattribution, "reattribute_after_events", spy)
    return calls


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
def make_world(
    catalog: httpx.AsyncClient,
    attribution: httpx.AsyncClient,
    make_token: TokenFactory,
    tenant: str,
) -> WorldFactory:
    """Builds a random funnel world (``world.token`` is its tenant's admin).

    Called with a seed or a ``random.Random``, the sizes of :func:`build_world` and, to build
    it for another tenant than the test's, ``of=``.
    """

    async def factory(rng: random.Random | int, *, of: str = tenant, **sizes: Any) -> World:
        if isinstance(rng, int):
            rng = random.Random(rng)
        return await build_world(rng, catalog, attribution, of, make_token(of, "admin"), **sizes)

    return factory


@pytest.fixture
def report_token(make_token: TokenFactory, tenant: str) -> str:
    """A ``reports:read`` token of the test's tenant."""
    return make_token(tenant, "reports:read")


@pytest.fixture
def funnel_clock() -> Iterator[None]:
    """The clock of tests posting funnel worlds (:func:`fixed_clock`)."""
    with fixed_clock():
        yield
