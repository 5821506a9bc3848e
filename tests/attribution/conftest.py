"""Fixtures shared by the attribution tests."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from services.attribution.credit import reattribution

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
