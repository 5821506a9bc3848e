"""Fixtures of the operations suite."""

from __future__ import annotations

import pytest

from tests.conftest import Templates


@pytest.fixture
def templates(_templates: Templates) -> Templates:
    """The session's migrated template databases (see tests/conftest.py)."""
    return _templates
