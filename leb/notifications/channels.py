"""The ways a notification leaves leb, behind one small interface:
`send(notification, rendered, now) -> provider message id`, raising
ChannelError when the message did not go out."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.mail.message import make_msgid

from leb.sms import SmsError, send_sms

from .models import Channel, Notification, Reason
from .render import Rendered
from .webhooks import (
    SIGNATURE_HEADER,
    post_to_webhook,
    resolve_webhook_url,
    sign,
    webhook_secret,
)


class ChannelError(Exception):
    """Not sent. `permanent`: retrying cannot help. The message is short and
    holds no secrets: it is stored as the notification's last error."""

    def __init__(self, message: str, *, permanent: bool = False, reason: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reason = reason or Reason.DELIVERY_FAILED


Sender = Callable[[Notification, Rendered, datetime], str]


def send_email(notification: Notification, rendered: Rendered, now: datetime) -> str:
    message_id = make_msgid(domain="leb")
    email = EmailMessage(
        subject=rendered.subject,
        body=rendered.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.destination],
        headers={"Message-ID": message_id, "X-Leb-Notification": notification.kind},
    )
    try:
        email.send(fail_silently=False)
    except (OSError, ValueError) as exc:
        # smtplib errors are OSErrors; the exception type is enough to act on.
        raise ChannelError(f"email not accepted: {type(exc).__name__}") from exc
    return message_id


def send_text(notification: Notification, rendered: Rendered, now: datetime) -> str:
    try:
        return send_sms(notification.destination, rendered.sms) or ""
    except SmsError as exc:
        raise ChannelError(str(exc)[:200], permanent=exc.permanent) from exc


def webhook_payload(notification: Notification, rendered: Rendered) -> bytes:
    payload = {
        "id": notification.pk,
        "kind": notification.kind,
        "created_at": notification.created_at.isoformat(),
        "language": notification.language,
        "line_number": notification.line.msisdn if notification.line is not None else None,
        "subject": rendered.subject,
        "text": rendered.body,
        "sms": rendered.sms,
        "context": notification.context,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


# Kinds whose webhook body is a document frozen when it was queued (the row's
# context, e.g. an agent callback), signed with a secret the queuing app
# derives: kind -> secret for the row. They are not rendered.
DOCUMENT_WEBHOOKS: dict[str, Callable[[Notification], str]] = {}


def register_document_webhook(kind: str, secret_for: Callable[[Notification], str]) -> None:
    DOCUMENT_WEBHOOKS[kind] = secret_for


def send_webhook(notification: Notification, rendered: Rendered, now: datetime) -> str:
    try:
        target = resolve_webhook_url(notification.destination)
    except ValidationError as exc:
        raise ChannelError(
            f"webhook URL refused: {exc.code}",
            permanent=True,
            reason=Reason.DESTINATION_REFUSED,
        ) from exc
    secret_for = DOCUMENT_WEBHOOKS.get(notification.kind)
    if secret_for is not None:
        body = json.dumps(notification.context, ensure_ascii=False, separators=(",", ":")).encode()
        secret = secret_for(notification)
    else:
        assert notification.user_id is not None
        version = 0
        prefs = getattr(notification.user, "notification_preference", None)
        if prefs is not None:
            version = prefs.webhook_secret_version
        body = webhook_payload(notification, rendered)
        secret = webhook_secret(notification.user_id, version)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "leb-webhooks/1",
        "Leb-Event": notification.kind,
        "Leb-Delivery": str(notification.pk),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }
    try:
        # Sent to exactly the address that was just checked (no DNS rebinding).
        response = post_to_webhook(
            target, body, headers, timeout=settings.NOTIFICATIONS_WEBHOOK_TIMEOUT
        )
    except requests.RequestException as exc:
        raise ChannelError(f"webhook unreachable: {type(exc).__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise ChannelError(f"webhook answered HTTP {response.status_code}")
    return ""


SENDERS: dict[str, Sender] = {
    Channel.EMAIL: send_email,
    Channel.SMS: send_text,
    Channel.WEBHOOK: send_webhook,
}
