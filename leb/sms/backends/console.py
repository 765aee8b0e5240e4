"""Prints each message to stdout: for development, where no gateway exists.
Messages carry one-time codes, so they go nowhere else (no logging)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from leb.sms import SmsMessage

from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(self, stream: TextIO | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream = stream

    def send(self, message: SmsMessage) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"SMS to {message.to}\n{message.text}\n{'-' * 40}\n")
        stream.flush()
