"""Helpers for the notification tests: subscribers, a receipt context, and
the inbox of the local SMTP server."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

from leb.accounts.actions import do_register_user, do_save_preferences

_serial = itertools.count(1)


def make_user(
    *,
    email: str | None = None,
    phone: str = "",
    language: str = "en",
    time_zone: str = "Asia/Hong_Kong",
) -> Any:
    n = next(_serial)
    user = do_register_user(
        email=f"subscriber{n}@example.com" if email is None else email,
        phone=phone,
        password="correct horse battery 42",
        language=language,
        verified=True,
    )
    do_save_preferences(user, language=language, time_zone=time_zone)
    user.refresh_from_db()
    return user


def receipt_context(valid_until: datetime, *, amount: int = 5000) -> dict[str, Any]:
    return {
        "receipt_number": "2026-0000042",
        "receipt_url": "http://127.0.0.1:8000/receipts/2026-0000042/",
        "valid_until": valid_until.isoformat(),
        "paid_amount": amount,
        "paid_currency": "HKD",
        "channel": "web",
    }


@dataclass
class Received:
    to: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(make_header(decode_header(self.message["Subject"])))

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(self.message.get_content_charset() or "utf-8")


@dataclass
class SmtpInbox:
    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            Received(list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 OK"
