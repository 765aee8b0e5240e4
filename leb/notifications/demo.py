"""Demo notifications for the demo subscriber: their top-up receipts by email,
one by SMS, and one webhook that failed (its host does not exist), all made
through notify and the real delivery with in-memory email and SMS backends."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.test.utils import override_settings

from leb.topups.models import OrderStatus, TopUpOrder

from .actions import do_save_notification_preferences, notify
from .delivery import deliver_due_notifications
from .kinds import topup_succeeded_context
from .models import Notification, Status

DEMO_USERNAME = "demo"
# .invalid never resolves (RFC 6761): the delivery fails for good, as a demo should show.
DEMO_WEBHOOK = "https://hooks.invalid/leb"


def load_demo_notifications(now: datetime) -> None:
    """Idempotent: once the demo webhook row exists, nothing changes."""
    user = get_user_model().objects.filter(username=DEMO_USERNAME).first()
    if user is None:
        return
    order = (
        TopUpOrder.objects.filter(line__owner=user, status=OrderStatus.FULFILLED)
        .select_related("line__phone_number")
        .order_by("-fulfilled_at", "-pk")
        .first()
    )
    if order is None:
        return
    dedupe_key = f"demo:order:{order.public_id}"
    if Notification.objects.filter(user=user, dedupe_key=dedupe_key).exists():
        return
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        SMS_BACKEND="leb.sms.backends.locmem.SmsBackend",
        NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE=False,
    ):
        # The receipts the demo top-ups queued go out by email.
        pending = list(
            Notification.objects.filter(user=user, status=Status.PENDING).values_list(
                "pk", flat=True
            )
        )
        deliver_due_notifications(now, ids=pending)
        # One more receipt to every channel: email, SMS and a webhook.
        do_save_notification_preferences(
            user,
            email_enabled=True,
            sms_enabled=True,
            sms_number=order.line.msisdn,
            webhook_url=DEMO_WEBHOOK,
        )
        rows = notify(
            kind="topup_succeeded",
            context=topup_succeeded_context(order),
            dedupe_key=dedupe_key,
            line=order.line,
            now=now,
        )
        deliver_due_notifications(now, ids=[row.pk for row in rows])
        do_save_notification_preferences(user, webhook_url="")
