"""Fixtures for notification tests: a real local SMTP server and SMS kept in
leb.sms.outbox. The local webhook receiver (`hook_server`) is in leb/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import leb.sms
from leb.testing import free_port

from .helpers import SmtpInbox


@pytest.fixture(autouse=True)
def _sms_outbox(settings: Any) -> Iterator[None]:
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"
    leb.sms.outbox.clear()
    yield
    leb.sms.outbox.clear()


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpInbox]:
    """A real SMTP server on 127.0.0.1 (free port) behind Django's SMTP backend."""
    inbox = SmtpInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        yield inbox
    finally:
        controller.stop()
