"""Auto-keep fixtures: a frozen clock, an owned line, a saved sandbox card."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from leb.common import clock

from .helpers import OK_CARD


@pytest.fixture(autouse=True)
def frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture
def line(make_line: Any, owner: Any) -> Any:
    return make_line(owner=owner)


@pytest.fixture
def save_card(owner: Any, now: datetime) -> Callable[..., Any]:
    from leb.autokeep.actions import do_save_sandbox_method

    def factory(
        number: str = OK_CARD, *, user: Any = None, exp: tuple[int, int] = (12, 2030)
    ) -> Any:
        return do_save_sandbox_method(user or owner, number, exp[0], exp[1], now=now)

    return factory


@pytest.fixture
def card(save_card: Callable[..., Any]) -> Any:
    return save_card()


@pytest.fixture
def make_rule(owner: Any, now: datetime, hkd_plan: Any) -> Callable[..., Any]:
    from leb.autokeep.actions import do_set_rule

    def factory(line: Any, method: Any, **kwargs: Any) -> Any:
        fields: dict[str, Any] = {"mode": "threshold", "plan": hkd_plan, "days_before": 7}
        fields.update(kwargs)
        return do_set_rule(user=owner, line=line, method=method, now=now, **fields)

    return factory
