from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.utils import translation

import leb.sms
from leb.notifications.actions import do_save_notification_preferences, notify
from leb.notifications.delivery import deliver_due_notifications, retry_delay
from leb.notifications.models import Channel, Notification, Reason, Status

from .helpers import SmtpInbox, make_user, receipt_context

pytestmark = pytest.mark.django_db

VALID_UNTIL = datetime(2026, 12, 28, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "date_text", "amount_text"),
    [
        ("en", "December 28, 2026", "HK$50.00"),
        ("zh-hans", "2026年12月28日", "HK$50.00"),
        ("zh-hant", "2026年12月28日", "HK$50.00"),
    ],
)
def test_email_goes_through_smtp_in_the_recipients_language(
    smtp: SmtpInbox, make_line: Any, now: datetime, language: str, date_text: str, amount_text: str
) -> None:
    # given
    user = make_user(language=language)
    line = make_line(owner=user)
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="order:a",
        line=line,
        now=now,
    )

    # when
    result = deliver_due_notifications(now)

    # then a real SMTP server received it
    assert result.sent == 1
    (mail,) = smtp.messages
    assert mail.to == [user.email]
    assert mail.message["To"] == user.email
    with translation.override(language):
        expected_subject = translation.gettext(
            "Top-up of %(number)s done, receipt %(receipt_number)s"
        ) % {"number": line_number(line), "receipt_number": "2026-0000042"}
        expected_intro = translation.gettext("Receipt number:")
    assert mail.subject == expected_subject
    assert date_text in mail.body
    assert amount_text in mail.body
    assert expected_intro in mail.body
    assert "http://127.0.0.1:8000/receipts/2026-0000042/" in mail.body
    row = Notification.objects.get()
    assert row.status == Status.SENT
    assert row.sent_at == now
    assert row.attempts == 1
    assert row.provider_message_id.startswith("<")


def line_number(line: Any) -> str:
    from leb.lines.identifiers import format_msisdn

    return format_msisdn(line.msisdn)


def test_the_time_zone_of_the_recipient_decides_the_date(
    smtp: SmtpInbox, make_line: Any, now: datetime
) -> None:
    # given validity ending 23:30 UTC on 27 December: already the 28th in Hong Kong
    user = make_user(time_zone="Asia/Hong_Kong")
    late = datetime(2026, 12, 27, 23, 30, tzinfo=UTC)
    notify(
        kind="topup_succeeded", context=receipt_context(late), dedupe_key="tz", user=user, now=now
    )

    # when
    deliver_due_notifications(now)

    # then
    assert "December 28, 2026" in smtp.messages[0].body


def test_sms_goes_through_the_configured_backend(make_line: Any, now: datetime) -> None:
    # given a line without an owner
    line = make_line()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="sms",
        line=line,
        now=now,
    )

    # when
    result = deliver_due_notifications(now)

    # then
    assert result.sent == 1
    (sms,) = leb.sms.outbox
    assert sms.to == line.msisdn
    assert "2026-0000042" in sms.text
    assert "http://127.0.0.1:8000/receipts/2026-0000042/" in sms.text
    assert Notification.objects.get().status == Status.SENT


def test_nothing_is_sent_twice(smtp: SmtpInbox, make_line: Any, now: datetime) -> None:
    # given
    user = make_user()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="1",
        user=user,
        now=now,
    )
    deliver_due_notifications(now)

    # when the job runs again later
    result = deliver_due_notifications(now + timedelta(hours=1))

    # then
    assert result.sent == 0
    assert len(smtp.messages) == 1


def test_failures_are_retried_with_exponential_backoff_then_recorded(
    settings: Any, make_line: Any, now: datetime, owner_client: Any, owner: Any
) -> None:
    # given an SMTP server that refuses connections (nothing listens on the port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: closed
    settings.EMAIL_TIMEOUT = 2
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="r",
        user=owner,
        now=now,
    )

    # when the first attempt fails
    first = deliver_due_notifications(now)

    # then it waits one minute
    row = Notification.objects.get()
    assert first.retried == 1
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert row.next_attempt_at == now + timedelta(minutes=1)
    assert "ConnectionRefusedError" in row.last_error

    # when it is retried too early, nothing happens
    assert deliver_due_notifications(now + timedelta(seconds=59)).retried == 0

    # when the second attempt fails: two minutes
    second_at = now + timedelta(minutes=1)
    deliver_due_notifications(second_at)
    row.refresh_from_db()
    assert row.attempts == 2
    assert row.next_attempt_at == second_at + timedelta(minutes=2)

    # when the last attempt fails
    third = deliver_due_notifications(second_at + timedelta(minutes=2))

    # then the failure is final and shown in the centre
    row.refresh_from_db()
    assert third.failed == 1
    assert (row.status, row.attempts, row.reason) == (Status.FAILED, 3, Reason.DELIVERY_FAILED)
    assert row.next_attempt_at is None
    page = owner_client.get("/notifications/")
    assert "Failed" in page.content.decode()
    assert "The provider did not accept the message." in page.content.decode()


def test_retry_delays_double() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 960]


def test_a_retry_past_the_deadline_is_final(settings: Any, make_line: Any, now: datetime) -> None:
    # given an SMS gateway that fails, and a deadline 30 seconds away
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = ""
    line = make_line()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="d",
        line=line,
        deliver_by=now + timedelta(seconds=30),
        now=now,
    )

    # when
    result = deliver_due_notifications(now)

    # then
    assert result.failed == 1
    assert Notification.objects.get().status == Status.FAILED


def test_topped_up_meanwhile_the_reminder_is_skipped(make_line: Any, now: datetime) -> None:
    # given a reminder queued against the current validity
    line = make_line()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="reminder",
        line=line,
        skip_if_validity_changed=True,
        now=now,
    )

    # when the line is topped up before the reminder goes out
    from leb.lines.models import Line

    Line.objects.filter(pk=line.pk).update(valid_until=line.valid_until + timedelta(days=30))
    result = deliver_due_notifications(now)

    # then
    row = Notification.objects.get()
    assert result.skipped == 1
    assert (row.status, row.reason) == (Status.SKIPPED, Reason.VALIDITY_CHANGED)
    assert leb.sms.outbox == []


def test_unchanged_validity_sends_the_reminder(make_line: Any, now: datetime) -> None:
    line = make_line()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="reminder",
        line=line,
        skip_if_validity_changed=True,
        now=now,
    )
    assert deliver_due_notifications(now).sent == 1


def test_a_channel_switched_off_before_delivery_is_skipped(smtp: SmtpInbox, now: datetime) -> None:
    # given
    user = make_user()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="s",
        user=user,
        now=now,
    )

    # when the user switches emails off before the job runs
    do_save_notification_preferences(user, email_enabled=False)
    deliver_due_notifications(now)

    # then
    row = Notification.objects.get()
    assert (row.status, row.reason) == (Status.SKIPPED, Reason.OPTED_OUT)
    assert smtp.messages == []


def test_quiet_hours_set_after_queueing_hold_the_message(smtp: SmtpInbox, now: datetime) -> None:
    # given a message queued at 12:00 HKT, then quiet hours 11:00-13:00 set
    user = make_user()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="h",
        user=user,
        now=now,
    )
    do_save_notification_preferences(user, quiet_start=time(11), quiet_end=time(13))

    # when
    held = deliver_due_notifications(now)

    # then it waits until 13:00 HKT (05:00 UTC), and goes then
    assert held.deferred == 1
    assert Notification.objects.get().next_attempt_at == now + timedelta(hours=1)
    assert smtp.messages == []
    assert deliver_due_notifications(now + timedelta(hours=1)).sent == 1
    assert len(smtp.messages) == 1


def test_a_reminder_impossible_to_deliver_outside_quiet_hours_goes_at_the_last_moment(
    smtp: SmtpInbox, now: datetime
) -> None:
    # given quiet hours 22:00-08:00 HKT and a reminder at 23:00 HKT useful until 02:00 HKT
    user = make_user()
    do_save_notification_preferences(user, quiet_start=time(22), quiet_end=time(8))
    at = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 23:00 HKT
    deadline = datetime(2026, 6, 1, 18, 0, tzinfo=UTC)  # 02:00 HKT
    (row,) = notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="last",
        user=user,
        deliver_by=deadline,
        now=at,
    )

    # then it is planned 15 minutes before the deadline, not at 08:00
    assert row.next_attempt_at == deadline - timedelta(minutes=15)
    assert deliver_due_notifications(deadline - timedelta(minutes=16)).sent == 0
    assert deliver_due_notifications(deadline - timedelta(minutes=15)).sent == 1
    assert len(smtp.messages) == 1


def test_past_its_deadline_a_message_is_not_sent(smtp: SmtpInbox, now: datetime) -> None:
    # given
    user = make_user()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="late",
        user=user,
        deliver_by=now + timedelta(hours=1),
        now=now,
    )

    # when the workers were down until after the deadline
    deliver_due_notifications(now + timedelta(hours=2))

    # then
    row = Notification.objects.get()
    assert (row.status, row.reason) == (Status.SKIPPED, Reason.TOO_LATE)
    assert smtp.messages == []


def test_a_claimed_row_is_not_picked_twice(smtp: SmtpInbox, now: datetime) -> None:
    # given a row claimed by a worker that then died
    from leb.notifications.delivery import _claim

    user = make_user()
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="c",
        user=user,
        now=now,
    )
    assert len(_claim(now, 10, None)) == 1

    # then another worker does not take it within the lease, but does after it
    assert deliver_due_notifications(now + timedelta(minutes=1)).sent == 0
    assert deliver_due_notifications(now + timedelta(minutes=5)).sent == 1
    assert Notification.objects.get().channel == Channel.EMAIL


@pytest.mark.parametrize("language", ["en", "zh-hans", "zh-hant"])
def test_the_receipt_sms_fits_in_two_segments(make_line: Any, now: datetime, language: str) -> None:
    # given a recipient in each language (UCS-2 for Chinese: 2 x 67 characters)
    user = make_user(phone="+85291239999", language=language)
    do_save_notification_preferences(user, email_enabled=False)
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="len",
        line=make_line(owner=user),
        now=now,
    )

    # when
    deliver_due_notifications(now)

    # then
    (sms,) = leb.sms.outbox
    limit = 306 if sms.text.isascii() else 134
    assert len(sms.text) <= limit, sms.text


def test_cancelled_messages_are_not_sent(make_line: Any, now: datetime) -> None:
    # given two pending reminders and a receipt for one line
    from leb.notifications.actions import do_cancel_notifications

    line = make_line()
    for key in ("r1", "r2"):
        notify(kind="expiry_reminder", context={}, dedupe_key=key, line=line, now=now)
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="keep",
        line=line,
        now=now,
    )

    # when the reminders are withdrawn
    cancelled = do_cancel_notifications(line=line, kinds=["expiry_reminder"], now=now)
    result = deliver_due_notifications(now)

    # then only the receipt goes out
    assert cancelled == 2
    assert result.sent == 1
    assert Notification.objects.filter(status=Status.CANCELLED).count() == 2


def test_an_unproven_address_receives_nothing(
    make_line: Any, now: datetime, smtp: SmtpInbox
) -> None:
    # given an account whose email address was never confirmed
    from leb.accounts.actions import do_mark_contacts_verified, do_register_user

    user = do_register_user(
        email="typed-by-someone@example.com",
        phone="",
        password="correct horse battery 42",
        language="en",
    )
    line = make_line(owner=user)

    # when a receipt is queued and delivery runs
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="order:unproven",
        line=line,
        now=now,
    )
    deliver_due_notifications(now)

    # then no email went out
    assert smtp.messages == []
    assert not Notification.objects.filter(user=user, channel=Channel.EMAIL, status=Status.SENT)

    # and once the address is proven, the next receipt reaches it
    do_mark_contacts_verified(user)
    notify(
        kind="topup_succeeded",
        context=receipt_context(VALID_UNTIL),
        dedupe_key="order:proven",
        line=line,
        now=now,
    )
    deliver_due_notifications(now)
    assert [m.to for m in smtp.messages] == [["typed-by-someone@example.com"]]
