"""The clock is frozen at `now` and the cache is empty in every test here."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

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


@pytest.fixture
def owner_token(owner: Any) -> str:
    from leb.api.actions import do_create_personal_token

    _token, clear = do_create_personal_token(owner, "laptop")
    return clear
