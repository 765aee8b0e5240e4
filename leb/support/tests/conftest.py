"""Support test helpers: a frozen clock, a private cache, people and a failed order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.cache import cache

import leb.sms
from leb.common import clock


@pytest.fixture(autouse=True)
def _isolated(now: datetime, settings: Any) -> Iterator[None]:
    # Rate-limit counters live in the cache: each test gets its own.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "support-tests",
        }
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    settings.SITE_URL = "https://leb.example"
    cache.clear()
    leb.sms.outbox.clear()
    with clock.frozen(now):
        yield
    cache.clear()
    leb.sms.outbox.clear()


@pytest.fixture
def owner_line(make_line: Any, owner: Any) -> Any:
    return make_line(owner=owner)


@pytest.fixture
def failed_order(owner_line: Any, owner: Any, hkd_plan: Any, now: datetime) -> Any:
    from leb.topups.actions import do_create_order
    from leb.topups.models import OrderStatus, TopUpOrder

    order = do_create_order(
        line=owner_line,
        channel="web",
        plan=hkd_plan,
        customer=owner,
        idempotency_key="support-test:failed",
        now=now,
    )
    TopUpOrder.objects.filter(pk=order.pk).update(
        status=OrderStatus.FAILED, failure_reason="Card declined", finished_at=now
    )
    order.refresh_from_db()
    return order


@pytest.fixture
def attempt(failed_order: Any, now: datetime) -> Any:
    from leb.payments.models import AttemptStatus, PaymentAttempt

    return PaymentAttempt.objects.create(
        order=failed_order,
        provider="sandbox",
        amount=failed_order.price,
        currency=failed_order.currency,
        status=AttemptStatus.FAILED,
        created_at=now,
        updated_at=now,
    )


@pytest.fixture
def owner(owner: Any) -> Any:
    """The persona, as an established customer whose email address is proven."""
    from leb.accounts.actions import do_mark_contacts_verified

    do_mark_contacts_verified(owner)
    owner.refresh_from_db()
    return owner
