from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from leb.announcements.tests.factories import make_announcement


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py), so "published" and
    "expired" are decided there."""


@pytest.fixture
def announcement(db: Any, now: datetime) -> Callable[..., Any]:
    def factory(**fields: Any) -> Any:
        return make_announcement(now, **fields)

    return factory
