"""What the reminders say, in the recipient's language, and what happens to
one waiting in quiet hours when the line is topped up."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import translation

from leb.common.formatting import format_local_date
from leb.lines import lifecycle
from leb.lines.identifiers import format_msisdn
from leb.notifications.actions import do_save_notification_preferences
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Reason, Status
from leb.notifications.render import render
from leb.reminders.actions import scan_reminders
from leb.testing import topup

from .helpers import messages

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def _set_language(user: Any, language: str) -> None:
    user.profile.language = language
    user.profile.save(update_fields=["language"])


@pytest.mark.parametrize(
    ("language", "date"),
    [("en", "July 1, 2026"), ("zh-hans", "2026年7月1日"), ("zh-hant", "2026年7月1日")],
)
def test_the_expiry_reminder_is_written_in_the_owners_language(
    make_line: Any, owner: Any, hkd_plan: Any, now: datetime, language: str, date: str
) -> None:
    # given an owner who reads leb in `language`, and a plan on sale
    _set_language(owner, language)
    line = make_line(owner=owner)

    # when the 30-day reminder is rendered for them
    scan_reminders(now + timedelta(minutes=1))
    [message] = messages(line)
    rendered = render(message)

    # then subject, body and SMS are in their language, with their date format
    assert message.language == language
    with translation.override(language):
        subject = translation.gettext("Your number %(number)s is valid until %(date)s") % {
            "number": format_msisdn(line.msisdn),
            "date": date,
        }
        topup_words = translation.gettext("Top up online:")
    assert rendered.subject == subject
    assert topup_words in rendered.body
    assert "http://127.0.0.1:8000/topup/" in rendered.body
    assert date in rendered.body
    assert "50" in rendered.body  # the cheapest plan's price
    assert format_msisdn(line.msisdn) in rendered.sms


@pytest.mark.parametrize(
    ("moment", "kind", "words"),
    [
        (30 * DAY, "grace_started", "receive-only"),
        (60 * DAY, "line_suspended", "is suspended"),
        (113 * DAY, "number_loss_warning", "lost for good"),
    ],
)
def test_each_kind_renders_its_dates(
    make_line: Any, owner: Any, now: datetime, moment: timedelta, kind: str, words: str
) -> None:
    # given a line past its validity
    line = make_line(owner=owner)

    # when the reminder of that stage is rendered
    scan_reminders(now + moment + timedelta(minutes=1))
    [message] = [m for m in messages(line) if m.kind == kind]
    rendered = render(message)

    # then it says what happened and by when to top up
    assert words in rendered.body
    assert "/topup/" in rendered.body and "/topup/" in rendered.sms
    assert rendered.subject
    assert len(rendered.sms) <= 134


def test_a_reminder_waiting_in_quiet_hours_is_dropped_after_a_top_up(
    make_line: Any, owner: Any, hkd_plan: Any, now: datetime
) -> None:
    # given an owner with quiet hours from 22:00 to 08:00 (Hong Kong time)
    do_save_notification_preferences(owner, quiet_start=time(22, 0), quiet_end=time(8, 0))
    line = make_line(owner=owner)
    valid_until = line.valid_until
    # 7 days before expiry is 12:00 HKT; the scan runs at 23:00 HKT that evening
    late_evening = valid_until - 7 * DAY + timedelta(hours=11)
    scan_reminders(late_evening)
    [message] = messages(line)
    assert message.next_attempt_at is not None and message.next_attempt_at > late_evening

    # when the owner tops up during the night, before the message may go out
    topup(line, hkd_plan, now=late_evening + timedelta(hours=1))
    result = deliver_due_notifications(message.next_attempt_at)

    # then the stale reminder is not sent
    message.refresh_from_db()
    assert (message.status, message.reason) == (Status.SKIPPED, Reason.VALIDITY_CHANGED)
    assert result.skipped == 1
    assert not [m for m in mail.outbox if "valid until" in m.subject]


def test_without_a_top_up_the_reminder_goes_out_when_quiet_hours_end(
    make_line: Any, owner: Any, now: datetime
) -> None:
    # given the same reminder waiting for the morning
    do_save_notification_preferences(owner, quiet_start=time(22, 0), quiet_end=time(8, 0))
    line = make_line(owner=owner)
    scan_reminders(line.valid_until - 7 * DAY + timedelta(hours=11))
    [message] = messages(line)

    # when the morning comes
    deliver_due_notifications(message.next_attempt_at)

    # then it is sent
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert Notification.objects.filter(status=Status.SENT).count() == 1


@pytest.mark.parametrize(
    ("zone", "day"),
    [("Asia/Hong_Kong", "Sep 28, 2026"), ("America/Los_Angeles", "Sep 27, 2026")],
)
def test_the_suspended_sms_says_the_last_day_to_keep_the_number(
    make_line: Any, owner: Any, now: datetime, zone: str, day: str
) -> None:
    # given an owner in `zone`; the number is lost on 29 September at noon
    # Hong Kong time (28 September, 21:00 in Los Angeles)
    owner.profile.time_zone = zone
    owner.profile.save(update_fields=["time_zone"])
    line = make_line(owner=owner)

    # when the suspension SMS is rendered
    scan_reminders(now + 60 * DAY + timedelta(minutes=1))
    [message] = [m for m in messages(line) if m.kind == "line_suspended"]
    text = render(message, channel="sms").sms

    # then "top up by" is the day before the loss, in their time zone, the
    # day the line page and the calendar name
    assert line.valid_until is not None
    keep = lifecycle.last_keep_day(line.valid_until, line.policy, ZoneInfo(zone))
    assert format_local_date(keep, ZoneInfo(zone), "en", "medium") == day
    assert f"Top up by {day} or lose it" in text
