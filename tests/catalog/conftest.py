"""Fixtures of the catalog suite: a tenant acting through the API, another one, the sync token."""

from __future__ import annotations

import httpx
import pytest

from tests.catalog.factories import Shop
from tests.conftest import TokenFactory, new_tenant


@pytest.fixture
def shop(catalog: httpx.AsyncClient, make_token: TokenFactory, tenant: str) -> Shop:
    return Shop(catalog, tenant, make_token(tenant, "catalog:read", "catalog:write"))


@pytest.fixture
def other_shop(catalog: httpx.AsyncClient, make_token: TokenFactory) -> Shop:
    """A second tenant on the same catalog."""
    other = new_tenant()
    return Shop(catalog, other, make_token(other, "catalog:read", "catalog:write"))


@pytest.fixture
def sync_token(make_token: TokenFactory) -> str:
    """The attribution service's credential: every tenant's change feed."""
    return make_token("*", "catalog:sync")
