from __future__ import annotations

from typing import Any

from leb.sms import SmsMessage


class BaseSmsBackend:
    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, message: SmsMessage) -> str | None:
        """Hand the message over; return the gateway's message id, if any."""
        raise NotImplementedError
