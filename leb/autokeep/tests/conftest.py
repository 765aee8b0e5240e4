"""Auto-keep test helpers: a frozen clock, an owned line, a saved sandbox card."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from leb.common import clock

# Sandbox test cards.
OK_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
NO_FUNDS_CARD = "4000000000009995"
SECURE_CARD = "4000002500003155"


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


def notified(kind: str, **filters: Any) -> list[str]:
    """The dedupe keys of the notifications of `kind` written so far."""
    from leb.notifications.models import Notification

    return sorted(
        set(Notification.objects.filter(kind=kind, **filters).values_list("dedupe_key", flat=True))
    )
