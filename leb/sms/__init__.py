"""Sending text messages, with a swappable backend like Django's email backends.

settings.SMS_BACKEND names the backend class (dotted path). The console backend
is the default, so a development setup never texts a real phone; tests use the
locmem backend and read `leb.sms.outbox`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from .backends.base import BaseSmsBackend

DEFAULT_BACKEND = "leb.sms.backends.console.SmsBackend"


class SmsError(Exception):
    """The message could not be handed to the gateway. `permanent` means
    trying again will not help (the gateway refused this message for good)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class SmsMessage:
    to: str
    text: str


# Filled by the locmem backend, like django.core.mail.outbox.
outbox: list[SmsMessage] = []


def get_backend(path: str | None = None, **kwargs: Any) -> BaseSmsBackend:
    backend_class: type[BaseSmsBackend] = import_string(
        path or getattr(settings, "SMS_BACKEND", "") or DEFAULT_BACKEND
    )
    return backend_class(**kwargs)


def send_sms(to_e164: str, text: str, *, backend: BaseSmsBackend | None = None) -> str | None:
    """Send one message to an E.164 number; raises SmsError on failure.
    Returns the gateway's message id when it gives one."""
    if not to_e164.startswith("+") or not to_e164[1:].isdigit():
        raise SmsError("the recipient must be an E.164 number", permanent=True)
    return (backend or get_backend()).send(SmsMessage(to=to_e164, text=text))
