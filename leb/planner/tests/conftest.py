"""The clock is frozen at `now` in every test here (the cache starts empty in every test)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""
