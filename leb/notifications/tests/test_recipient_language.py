"""Every message, subject included, is written in the recipient's language:
the account's preference, else the site default for a line without one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import translation

import leb.sms
from leb.notifications.actions import recipient_language
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification
from leb.reminders.actions import scan_reminders
from leb.testing import topup

from .helpers import SmtpInbox, make_user

pytestmark = pytest.mark.django_db

# Words written differently in the two scripts (號 / 号) or only in Hong Kong
# usage (增值 for a top-up, 充值 in Simplified Chinese).
TRADITIONAL = ("號", "增值", "有效期")
SIMPLIFIED = ("号", "充值")


def test_a_zh_hant_user_gets_the_subject_and_body_in_traditional_chinese(
    smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a subscriber who reads leb in Traditional Chinese
    user = make_user(language="zh-hant")
    line = make_line(owner=user)

    # when a top-up is confirmed and delivered while the process speaks English
    topup(line, hkd_plan, now=now)
    with translation.override("en"):
        deliver_due_notifications(now + timedelta(minutes=1))

    # then the subject is Traditional Chinese, and so is the whole message
    (mail,) = smtp.messages
    assert "號碼" in mail.subject or "增值" in mail.subject
    assert not any(word in mail.subject for word in SIMPLIFIED)
    assert "Top-up" not in mail.subject
    assert "有效期至" in mail.body
    assert "2026年12月28日" in mail.body


@pytest.mark.parametrize(
    ("days", "kind"),
    [(1, "expiry_reminder"), (31, "grace_started"), (61, "line_suspended")],
)
def test_reminder_subjects_are_in_the_recipients_language(
    smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime, days: int, kind: str
) -> None:
    # given a zh-hant owner and a line that reaches `kind` after `days`
    user = make_user(language="zh-hant")
    line = make_line(owner=user)
    at = now + timedelta(days=days)

    # when the reminders run and are delivered
    scan_reminders(at)
    deliver_due_notifications(at + timedelta(hours=12))

    # then each email's subject is Traditional Chinese
    rows = Notification.objects.filter(line=line, kind=kind, channel="email")
    assert rows.exists()
    subjects = [m.subject for m in smtp.messages]
    assert subjects
    for subject in subjects:
        assert "號碼" in subject, subject
        assert "Your number" not in subject


def test_a_language_changed_while_waiting_is_the_one_used(
    smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a message queued for an English reader
    user = make_user(language="en")
    line = make_line(owner=user)
    topup(line, hkd_plan, now=now)

    # when they switch to Traditional Chinese before it goes out
    user.profile.language = "zh-hant"
    user.profile.save(update_fields=["language"])
    deliver_due_notifications(now + timedelta(minutes=1))

    # then it goes out in their language now, and the row says so
    (mail,) = smtp.messages
    assert "號碼" in mail.subject or "增值" in mail.subject
    assert set(Notification.objects.filter(channel="email").values_list("language", flat=True)) == {
        "zh-hant"
    }


@pytest.mark.parametrize(
    ("stored", "language"),
    [
        ("zh-hant", "zh-hant"),
        ("zh-Hant", "zh-hant"),
        ("zh_TW", "zh-hant"),
        ("zh-HK", "zh-hant"),
        ("zh-CN", "zh-hans"),
        ("zh-Hans", "zh-hans"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
    ],
)
def test_stored_language_spellings_map_to_a_site_language(stored: str, language: str) -> None:
    assert recipient_language(stored) == language


def test_a_line_without_an_account_hears_in_the_site_language(
    settings: Any, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given the site's default language is Traditional Chinese
    settings.LANGUAGE_CODE = "zh-hant"
    line = make_line()

    # when a guest top-up of that line is confirmed
    topup(line, hkd_plan, now=now)
    deliver_due_notifications(now + timedelta(minutes=1))

    # then the SMS to the line's own number is in that language
    (sms,) = leb.sms.outbox
    assert sms.to == line.msisdn
    assert any(word in sms.text for word in TRADITIONAL)
