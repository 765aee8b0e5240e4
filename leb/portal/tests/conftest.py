from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.cache import cache

from leb.announcements.tests.factories import make_announcement
from leb.common import clock


@pytest.fixture(autouse=True)
def _fresh_cache_and_clock(now: datetime) -> Iterator[None]:
    # The banner and rate-limit counters live in the cache; the clock is frozen
    # so "published" and "expired" are decided at the fixture's `now`.
    cache.clear()
    with clock.frozen(now):
        yield
    cache.clear()


@pytest.fixture
def announcement(db: Any, now: datetime) -> Callable[..., Any]:
    def factory(**fields: Any) -> Any:
        return make_announcement(now, **fields)

    return factory
