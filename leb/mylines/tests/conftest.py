from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

import leb.sms
from leb.common import clock


@pytest.fixture(autouse=True)
def _frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture(autouse=True)
def sms_outbox(settings: Any) -> Iterator[list[leb.sms.SmsMessage]]:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    leb.sms.outbox.clear()
    yield leb.sms.outbox
    leb.sms.outbox.clear()
