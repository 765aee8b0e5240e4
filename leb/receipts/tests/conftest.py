"""Personas for receipts: the owner of a topped-up line, an outsider (another
signed-in user) and an anonymous visitor; the clock is frozen at `now`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from leb.testing import topup


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture(autouse=True)
def _site_url(settings: Any) -> None:
    settings.SITE_URL = "https://leb.example"


@pytest.fixture
def line(make_line: Callable[..., Any], owner: Any) -> Any:
    return make_line(owner=owner)


@pytest.fixture
def make_order(hkd_plan: Any, owner: Any, now: datetime) -> Callable[..., Any]:
    def factory(
        line: Any, *, at: datetime | None = None, customer: Any = owner, **kwargs: Any
    ) -> Any:
        plan = kwargs.pop("plan", hkd_plan if "amount" not in kwargs else None)
        order = topup(line, plan, now=at or now, **kwargs)
        order.customer = customer
        order.save(update_fields=["customer"])
        return order

    return factory


@pytest.fixture
def order(line: Any, make_order: Callable[..., Any]) -> Any:
    return make_order(line)
