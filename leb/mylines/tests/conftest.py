from collections.abc import Iterator
from typing import Any

import pytest

import leb.sms


@pytest.fixture(autouse=True)
def _frozen_clock(frozen_now: None) -> None:
    """The clock stands still at `now` (leb/conftest.py)."""


@pytest.fixture(autouse=True)
def sms_outbox(settings: Any) -> Iterator[list[leb.sms.SmsMessage]]:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    leb.sms.outbox.clear()
    yield leb.sms.outbox
    leb.sms.outbox.clear()
