"""The mail and SMS gateways failing for real: an SMTP server that refuses
for now (451) or for good (554), one that accepts the connection and never
says a word, an SMS gateway that answers 503 or stalls. Each message stays in
the outbox, is tried again with backoff, is delivered exactly once when the
gateway recovers, and the subscriber's notification centre says how it went."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from leb.notifications.actions import notify
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Reason, Status
from leb.testing import Answer, FaultServer, free_port

from .helpers import SmtpInbox, receipt_context

pytestmark = pytest.mark.django_db
VALID_UNTIL = datetime(2026, 12, 28, 4, 0, tzinfo=UTC)


class MoodySmtp(SmtpInbox):
    """A real SMTP server that answers DATA with the next queued reply."""

    def __init__(self) -> None:
        super().__init__()
        self.replies: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.pop(0)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def moody_smtp(settings: Any) -> Iterator[MoodySmtp]:
    inbox = MoodySmtp()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def silent_smtp(settings: Any) -> Iterator[None]:
    """Accepts TCP connections and never sends the SMTP greeting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", listener.getsockname()[1]
    settings.EMAIL_TIMEOUT = 0.3
    try:
        yield
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def queue_receipt(owner: Any, now: datetime, **target: Any) -> Notification:
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="fault",
        now=now,
        **(target or {"user": owner}),
    )
    return Notification.objects.get()


def test_smtp_refusing_for_now_is_retried_and_delivered_once(
    moody_smtp: MoodySmtp, owner: Any, owner_client: Any, now: datetime
) -> None:
    # given an SMTP server that answers "try later" twice
    moody_smtp.replies = ["451 4.3.0 Mailbox temporarily unavailable"] * 2
    row = queue_receipt(owner, now)
    # when the outbox delivers, then retries on its schedule
    assert deliver_due_notifications(now).retried == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert row.next_attempt_at == now + timedelta(minutes=1)
    page = owner_client.get("/notifications/").content.decode()
    assert "Failed" not in page
    deliver_due_notifications(now + timedelta(minutes=1))
    deliver_due_notifications(now + timedelta(minutes=3))
    # then the third try delivers, once; later runs send nothing more
    deliver_due_notifications(now + timedelta(hours=1))
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 3)
    assert len(moody_smtp.messages) == 1
    assert moody_smtp.messages[0].to == ["owner@example.com"]


def test_smtp_refusing_for_good_fails_with_a_clear_reason(
    moody_smtp: MoodySmtp, owner: Any, owner_client: Any, now: datetime, settings: Any
) -> None:
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    moody_smtp.replies = ["554 5.7.1 Rejected"] * 5
    row = queue_receipt(owner, now)
    deliver_due_notifications(now)
    deliver_due_notifications(now + timedelta(minutes=1))
    row.refresh_from_db()
    assert (row.status, row.reason) == (Status.FAILED, Reason.DELIVERY_FAILED)
    assert moody_smtp.messages == []
    page = owner_client.get("/notifications/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "服务商未接受此消息。" in page


def test_an_smtp_server_that_never_answers_times_out_and_is_retried(
    silent_smtp: None, owner: Any, now: datetime
) -> None:
    row = queue_receipt(owner, now)
    started = datetime.now(UTC)
    assert deliver_due_notifications(now).retried == 1
    # the configured timeout, not forever
    assert (datetime.now(UTC) - started).total_seconds() < 5
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert row.last_error == "email not accepted: SMTPServerDisconnected"


def test_the_email_timeout_has_a_default() -> None:
    import leb.settings

    assert leb.settings.EMAIL_TIMEOUT == 10


@pytest.fixture
def sms_gateway(fault_server: FaultServer, settings: Any) -> FaultServer:
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = fault_server.url + "/sms"
    settings.SMS_HTTP_TOKEN = "token"
    settings.SMS_HTTP_TIMEOUT = 0.3
    return fault_server


@pytest.mark.parametrize("fault", [Answer(503), Answer(delay=2), Answer(drop=True)])
def test_sms_gateway_down_is_retried_and_delivered_once(
    sms_gateway: FaultServer, make_line: Any, now: datetime, fault: Answer
) -> None:
    # given a line without an owner (its receipt goes by SMS) and a failing gateway
    line = make_line()
    sms_gateway.answer("/sms", fault)
    row = queue_receipt(None, now, line=line)
    # when the outbox delivers: kept for a retry
    assert deliver_due_notifications(now).retried == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    # when the gateway recovers
    sms_gateway.answer("/sms", Answer(200, {"id": "m1"}))
    deliver_due_notifications(now + timedelta(minutes=1))
    deliver_due_notifications(now + timedelta(minutes=30))
    # then the text went out once
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 2)
    delivered = sms_gateway.requests_to("/sms")
    assert len(delivered) == 2  # the failed try and the one that went through
    assert delivered[-1].headers["Authorization"] == "Bearer token"
    assert line.msisdn in delivered[-1].body.decode()
