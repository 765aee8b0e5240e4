from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import leb.sms
from leb.common import clock


@pytest.fixture(autouse=True)
def _isolated(now: datetime, settings: Any) -> Iterator[None]:
    # Texts and emails are kept for the test to read; the clock is frozen so
    # code and link expiry are decided by moving it.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    settings.SITE_URL = "https://leb.example"
    leb.sms.outbox.clear()
    with clock.frozen(now):
        yield
    leb.sms.outbox.clear()
