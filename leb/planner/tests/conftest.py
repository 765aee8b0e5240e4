"""The clock is frozen at `now` and the cache is empty in every test here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from django.core.cache import cache

from leb.common import clock


@pytest.fixture(autouse=True)
def _frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()
