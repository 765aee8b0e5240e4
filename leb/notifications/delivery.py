"""Sending what the outbox holds.

Rows are claimed in short transactions (SELECT … FOR UPDATE SKIP LOCKED on
PostgreSQL) by moving their next attempt a lease ahead; the network I/O happens
outside any transaction; the outcome is written with a conditional UPDATE. A
worker that dies mid-send leaves the row to be retried when the lease runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from leb.common import clock
from leb.lines.models import Line

from .actions import recipient_language, zone
from .channels import DOCUMENT_WEBHOOKS, SENDERS, ChannelError
from .models import Channel, Notification, NotificationPreference, Reason, Status
from .quiet import send_time
from .render import Rendered, render

logger = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def retry_delay(attempts: int) -> timedelta:
    """1 min, 2, 4, 8, … after the 1st, 2nd, 3rd … failed attempt."""
    return timedelta(seconds=settings.NOTIFICATIONS_RETRY_SECONDS * 2 ** max(attempts - 1, 0))


def _claim(now: datetime, batch_size: int, ids: list[int] | None) -> list[int]:
    lease = now + timedelta(seconds=settings.NOTIFICATIONS_CLAIM_SECONDS)
    with transaction.atomic():
        due = Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now)
        if ids is not None:
            due = due.filter(pk__in=ids)
        claimed = list(
            due.order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if claimed:
            Notification.objects.filter(pk__in=claimed).update(next_attempt_at=lease)
    return claimed


def _finish(
    row: Notification, now: datetime, status: str, reason: str = "", **extra: object
) -> None:
    """Close the row; a secret in its context (a code, a link) is emptied in
    the same statement, whether the message went out, failed or came too late."""
    if row.secret_keys:
        extra["context"] = row.scrubbed_context()
    Notification.objects.filter(pk=row.pk, status=Status.PENDING).update(
        status=status, reason=reason, finished_at=now, next_attempt_at=None, **extra
    )


def _preference(row: Notification) -> NotificationPreference | None:
    if row.user is None:
        return None
    try:
        return row.user.notification_preference
    except NotificationPreference.DoesNotExist:
        return None


def _follow_current_profile(row: Notification) -> None:
    """Send in the language and time zone the account has now: a message that
    waited (quiet hours, retries) follows a change made meanwhile. Rows for a
    line without an account keep what notify stored."""
    profile = getattr(row.user, "profile", None) if row.user is not None else None
    if profile is None:
        return
    language = recipient_language(profile.language or "")
    time_zone = zone(profile.time_zone or "").key
    if (language, time_zone) != (row.language, row.time_zone):
        row.language, row.time_zone = language, time_zone
        Notification.objects.filter(pk=row.pk).update(language=language, time_zone=time_zone)


def _opted_out(row: Notification, prefs: NotificationPreference | None) -> bool:
    if prefs is None:
        return False
    if row.channel == Channel.EMAIL:
        return not prefs.email_enabled
    if row.channel == Channel.SMS:
        return not prefs.sms_enabled
    if row.channel == Channel.WEBHOOK:
        return not prefs.webhook_url
    return False


def deliver_one(row: Notification, now: datetime, current_valid_until: Mapping[int, object]) -> str:
    """Try one claimed row; returns the DeliveryResult field it counts towards."""
    if (
        row.skip_if_validity_changed
        and row.line_id is not None
        and current_valid_until.get(row.line_id) != row.valid_until_snapshot
    ):
        _finish(row, now, Status.SKIPPED, Reason.VALIDITY_CHANGED)
        return "skipped"
    if row.deliver_by is not None and now > row.deliver_by:
        _finish(row, now, Status.SKIPPED, Reason.TOO_LATE)
        return "skipped"
    prefs = _preference(row)
    if _opted_out(row, prefs):
        _finish(row, now, Status.SKIPPED, Reason.OPTED_OUT)
        return "skipped"
    if prefs is not None:
        # Quiet hours as they are now: the user may have changed them.
        allowed = send_time(
            now,
            tz=zone(row.time_zone),
            quiet_start=prefs.quiet_start,
            quiet_end=prefs.quiet_end,
            deliver_by=row.deliver_by,
            deadline_margin=timedelta(seconds=settings.NOTIFICATIONS_DEADLINE_MARGIN),
        )
        if allowed > now:
            Notification.objects.filter(pk=row.pk, status=Status.PENDING).update(
                next_attempt_at=allowed
            )
            return "deferred"
    _follow_current_profile(row)
    sender = SENDERS.get(row.channel)
    try:
        if sender is None:
            raise ChannelError(f"no sender for channel {row.channel}", permanent=True)
        rendered = Rendered("", "", "") if row.kind in DOCUMENT_WEBHOOKS else render(row)
        message_id = sender(row, rendered, now)
    except ChannelError as exc:
        return _failed(row, now, exc)
    except Exception as exc:
        # A template or programming error: record it, retry like any failure.
        logger.exception("notification %s could not be sent", row.pk)
        return _failed(row, now, ChannelError(f"internal error: {type(exc).__name__}"))
    _finish(
        row,
        now,
        Status.SENT,
        sent_at=now,
        attempts=F("attempts") + 1,
        provider_message_id=message_id[:100],
        last_error="",
    )
    return "sent"


def _failed(row: Notification, now: datetime, exc: ChannelError) -> str:
    attempts = row.attempts + 1
    error = str(exc)[:200]
    retry_at = now + retry_delay(attempts)
    final = (
        exc.permanent
        or attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
        or (row.deliver_by is not None and retry_at > row.deliver_by)
    )
    if final:
        _finish(row, now, Status.FAILED, exc.reason, attempts=attempts, last_error=error)
        return "failed"
    Notification.objects.filter(pk=row.pk, status=Status.PENDING).update(
        attempts=attempts, last_error=error, next_attempt_at=retry_at
    )
    return "retried"


def deliver_due_notifications(
    now: datetime | None = None, *, ids: list[int] | None = None, batch_size: int | None = None
) -> DeliveryResult:
    """Send every pending notification due at `now` (or only `ids`)."""
    now = now or clock.now()
    batch_size = batch_size or settings.NOTIFICATIONS_BATCH_SIZE
    result = DeliveryResult()
    while claimed := _claim(now, batch_size, ids):
        rows = list(
            Notification.objects.filter(pk__in=claimed)
            .select_related("user__profile", "user__notification_preference", "line__phone_number")
            .order_by("pk")
        )
        line_ids = {row.line_id for row in rows if row.skip_if_validity_changed and row.line_id}
        current = (
            dict(Line.objects.filter(pk__in=line_ids).values_list("pk", "valid_until"))
            if line_ids
            else {}
        )
        for row in rows:
            outcome = deliver_one(row, now, current)
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result
