from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from leb.notifications.actions import (
    do_rotate_webhook_secret,
    do_save_notification_preferences,
    notify,
)
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Channel, Notification, Reason, Status
from leb.notifications.webhooks import check_webhook_url, sign, verify, webhook_secret
from leb.testing import HookServer

from .helpers import make_user, receipt_context


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://93.184.215.14/hook", "scheme"),
        ("ftp://93.184.215.14/hook", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("https://user:pass@93.184.215.14/hook", "credentials"),
        ("https://10.0.0.5/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://127.0.0.1/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://0.0.0.0/hook", "private"),
        ("https://localhost/hook", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https:///hook", "invalid"),
        ("https://93.184.215.14:99999/hook", "invalid"),
    ],
)
def test_unsafe_webhook_urls_are_refused(settings: Any, url: str, code: str) -> None:
    settings.DEBUG = False
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(ValidationError) as raised:
        check_webhook_url(url)
    assert raised.value.code == code


def test_a_public_https_url_is_accepted(settings: Any) -> None:
    settings.DEBUG = False
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    assert (
        check_webhook_url(" https://93.184.215.14/hooks/leb ") == "https://93.184.215.14/hooks/leb"
    )


def test_http_is_allowed_in_debug_but_private_addresses_are_not(settings: Any) -> None:
    settings.DEBUG = True
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    assert check_webhook_url("http://93.184.215.14/hook")
    with pytest.raises(ValidationError):
        check_webhook_url("http://127.0.0.1:8000/hook")


def test_signature_round_trip_and_tampering() -> None:
    secret = webhook_secret(7, 0)
    body = b'{"kind":"topup_succeeded"}'
    header = sign(secret, 1_780_000_000, body)
    assert verify(secret, header, body)
    assert not verify(secret, header, body + b" ")
    assert not verify(webhook_secret(7, 1), header, body)
    assert not verify(secret, "t=abc,v1=00", body)
    assert not verify(secret, "", body)


def test_the_secret_is_derived_and_rotates() -> None:
    assert webhook_secret(7, 0) == webhook_secret(7, 0)
    assert webhook_secret(7, 0) != webhook_secret(8, 0)
    assert webhook_secret(7, 0) != webhook_secret(7, 1)
    assert webhook_secret(7, 0).startswith("whsec_")


@pytest.mark.django_db
def test_a_webhook_is_posted_signed_and_verifiable(hook_server: HookServer, now: datetime) -> None:
    # given a user with a webhook (local server: allowed by the test setting only)
    user = make_user()
    do_save_notification_preferences(user, email_enabled=False, webhook_url=hook_server.url)
    do_rotate_webhook_secret(user)
    notify(
        kind="topup_succeeded",
        context=receipt_context(datetime(2026, 12, 28, tzinfo=UTC)),
        dedupe_key="w",
        user=user,
        now=now,
    )

    # when
    result = deliver_due_notifications(now)

    # then the receiver gets JSON it can verify with the secret shown to the user
    assert result.sent == 1
    (request,) = hook_server.requests
    header = request.headers["Leb-Signature"]
    timestamp, _sep, mac = header.partition(",v1=")
    assert timestamp == f"t={int(now.timestamp())}"
    secret = webhook_secret(user.pk, 1)
    expected = hmac.new(
        secret.encode(), f"{int(now.timestamp())}.".encode() + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(mac, expected)
    payload = json.loads(request.body)
    assert payload["kind"] == "topup_succeeded"
    assert payload["context"]["receipt_number"] == "2026-0000042"
    assert "2026-0000042" in payload["text"]
    assert request.headers["Leb-Event"] == "topup_succeeded"
    assert Notification.objects.get().status == Status.SENT


@pytest.mark.django_db
def test_a_failing_receiver_is_retried(hook_server: HookServer, now: datetime) -> None:
    # given a receiver answering 500 once, then 200
    hook_server.status.append(500)
    user = make_user()
    do_save_notification_preferences(user, email_enabled=False, webhook_url=hook_server.url)
    notify(kind="topup_succeeded", context=receipt_context(now), dedupe_key="w", user=user, now=now)

    # when
    first = deliver_due_notifications(now)
    second = deliver_due_notifications(now + timedelta(minutes=1))

    # then
    assert (first.retried, second.sent) == (1, 1)
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (Status.SENT, 2)
    assert len(hook_server.requests) == 2


@pytest.mark.django_db
def test_the_url_is_checked_again_at_send_time(
    settings: Any, hook_server: HookServer, now: datetime
) -> None:
    # given a webhook saved while private addresses were allowed
    user = make_user()
    do_save_notification_preferences(user, email_enabled=False, webhook_url=hook_server.url)
    notify(kind="topup_succeeded", context=receipt_context(now), dedupe_key="w", user=user, now=now)

    # when the rule is back on before delivery
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False
    result = deliver_due_notifications(now)

    # then nothing is posted, the refusal is final and explained
    row = Notification.objects.get()
    assert result.failed == 1
    assert (row.channel, row.status, row.reason) == (
        Channel.WEBHOOK,
        Status.FAILED,
        Reason.DESTINATION_REFUSED,
    )
    assert hook_server.requests == []
