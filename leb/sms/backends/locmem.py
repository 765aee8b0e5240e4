"""Keeps messages in `leb.sms.outbox` for tests to read."""

from __future__ import annotations

import leb.sms
from leb.sms import SmsMessage

from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def send(self, message: SmsMessage) -> None:
        leb.sms.outbox.append(message)
