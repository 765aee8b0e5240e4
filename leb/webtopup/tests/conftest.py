"""Online top-up fixtures: a frozen clock, the sandbox provider, catalog rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _sandbox_payments(frozen_now: None, settings: Any) -> None:
    """The clock stands still at `now`; payments go to the sandbox."""
    settings.PAYMENT_PROVIDER = "sandbox"
    settings.PAYMENT_PROVIDERS = ["sandbox"]


@pytest.fixture
def hkd_rule(db: Any) -> Any:
    from leb.catalog.models import FreeAmountRule

    return FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=50000, tiers=[[1000, 30], [10000, 180]]
    )


@pytest.fixture
def make_promotion(db: Any, now: datetime) -> Callable[..., Any]:
    from leb.catalog.models import Promotion

    def factory(**fields: Any) -> Any:
        values: dict[str, Any] = {
            "code": f"promo-{Promotion.objects.count() + 1}",
            "name_en": "Summer bonus",
            "name_zh_hans": "夏日奖赏",
            "name_zh_hant": "夏日獎賞",
            "currency": "HKD",
            "starts_at": now - timedelta(days=1),
            "ends_at": now + timedelta(days=30),
            **fields,
        }
        return Promotion.objects.create(**values)

    return factory
