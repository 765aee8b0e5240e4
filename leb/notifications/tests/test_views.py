from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest

from leb.common import clock
from leb.notifications.actions import do_save_notification_preferences, notify
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import NotificationPreference
from leb.notifications.queries import mask_destination
from leb.notifications.webhooks import webhook_secret

from .helpers import receipt_context

pytestmark = pytest.mark.django_db


def test_the_centre_needs_a_sign_in(anonymous: Any) -> None:
    response = anonymous.get("/notifications/")
    assert response.status_code == 302
    assert "/account/login/" in response["Location"]


def test_the_centre_lists_what_was_sent(
    owner: Any, owner_client: Any, make_line: Any, now: datetime
) -> None:
    # given a sent email
    notify(
        kind="topup_succeeded",
        context=receipt_context(now + timedelta(days=200)),
        dedupe_key="a",
        user=owner,
        now=now,
    )
    deliver_due_notifications(now)

    # when
    response = owner_client.get("/notifications/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sent" in page
    assert "o***r@example.com" in page
    assert "owner@example.com" not in page
    assert "2026-0000042" in page


def test_a_message_held_by_quiet_hours_says_so(
    owner: Any, owner_client: Any, now: datetime
) -> None:
    # given quiet hours covering 12:00 HKT
    do_save_notification_preferences(owner, quiet_start=time(11), quiet_end=time(14))
    notify(
        kind="topup_succeeded", context=receipt_context(now), dedupe_key="q", user=owner, now=now
    )

    # when
    with clock.frozen(now):
        page = owner_client.get("/notifications/").content.decode()

    # then
    assert "Waiting for your quiet hours to end" in page


def test_with_every_channel_off_the_centre_still_shows_the_message(
    owner: Any, owner_client: Any, now: datetime
) -> None:
    # given
    do_save_notification_preferences(owner, email_enabled=False, sms_enabled=False)
    notify(
        kind="topup_succeeded", context=receipt_context(now), dedupe_key="off", user=owner, now=now
    )

    # when
    page = owner_client.get("/notifications/").content.decode()

    # then
    assert "Not sent" in page
    assert "All your channels are switched off." in page
    assert "2026-0000042" in page


def test_an_outsider_never_sees_the_owners_notifications(
    owner: Any, outsider_client: Any, now: datetime
) -> None:
    # given
    notify(
        kind="topup_succeeded", context=receipt_context(now), dedupe_key="x", user=owner, now=now
    )

    # when
    page = outsider_client.get("/notifications/").content.decode()

    # then
    assert "2026-0000042" not in page
    assert "No notifications yet." in page


def test_the_centre_has_a_query_budget_and_pages(
    owner: Any, owner_client: Any, make_line: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    # given 45 notifications on a line
    line = make_line(owner=owner)
    for n in range(45):
        notify(
            kind="topup_succeeded",
            context=receipt_context(now),
            dedupe_key=f"n{n}",
            line=line,
            now=now + timedelta(minutes=n),
        )

    # when / then the number of queries does not grow with the rows
    with django_assert_max_num_queries(10):
        first = owner_client.get("/notifications/")
    assert first.content.decode().count('class="notification-item') == 20
    last = owner_client.get("/notifications/?page=3")
    assert last.content.decode().count('class="notification-item') == 5


def test_preferences_page_shows_the_form_and_secret(owner: Any, owner_client: Any) -> None:
    response = owner_client.get("/notifications/preferences/")
    page = response.content.decode()
    assert response.status_code == 200
    assert webhook_secret(owner.pk, 0) in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert "style=" not in page
    assert "<script>" not in page


def test_preferences_are_saved(owner: Any, owner_client: Any) -> None:
    # when
    response = owner_client.post(
        "/notifications/preferences/",
        {
            "email_enabled": "on",
            "sms_enabled": "on",
            "sms_number": "9123 4567",
            "quiet_start": "22:00",
            "quiet_end": "07:30",
        },
    )

    # then
    assert response.status_code == 302
    prefs = NotificationPreference.objects.get(user=owner)
    assert prefs.sms_number == "+85291234567"
    assert (prefs.quiet_start, prefs.quiet_end) == (time(22), time(7, 30))
    assert prefs.email_enabled and prefs.sms_enabled


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email_enabled": "on", "email_address": "not-an-email"}, "Enter a valid email address"),
        ({"sms_enabled": "on", "sms_number": "9123"}, "is not a valid phone number"),
        ({"sms_enabled": "on", "sms_number": "abc"}, "digits only"),
        ({"sms_enabled": "on"}, "Enter a mobile number, or switch text messages off."),
        ({"webhook_url": "http://93.184.215.14/hook"}, "must start with https://"),
        ({"webhook_url": "https://127.0.0.1/hook"}, "public internet address"),
        ({"webhook_url": "https://localhost/hook"}, "public internet address"),
        ({"webhook_url": "https://u:p@93.184.215.14/"}, "user name or password"),
        ({"quiet_start": "22:00"}, "or neither"),
        ({"quiet_start": "25:00", "quiet_end": "07:00"}, "Enter a time like 22:00."),
        ({"quiet_start": "08:00", "quiet_end": "08:00"}, "different time"),
    ],
)
def test_bad_preferences_are_refused_and_nothing_is_saved(
    settings: Any, owner: Any, owner_client: Any, data: dict[str, str], message: str
) -> None:
    # given
    settings.DEBUG = False
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = False

    # when
    response = owner_client.post("/notifications/preferences/", {"email_enabled": "on", **data})

    # then
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not NotificationPreference.objects.filter(user=owner).exists()


def test_errors_are_translated(owner: Any, owner_client: Any) -> None:
    # when the page is asked for in Chinese
    response = owner_client.post(
        "/notifications/preferences/",
        {"email_enabled": "on", "sms_enabled": "on", "sms_number": "12"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    # then the page is in that language and the error is shown
    assert response.status_code == 400
    assert 'lang="zh-hans"' in response.content.decode()


def test_rotating_the_secret_changes_it(owner: Any, owner_client: Any) -> None:
    # when
    response = owner_client.post("/notifications/preferences/rotate-secret/")

    # then
    assert response.status_code == 302
    page = owner_client.get("/notifications/preferences/").content.decode()
    assert webhook_secret(owner.pk, 1) in page
    assert webhook_secret(owner.pk, 0) not in page


def test_rotating_needs_post_and_csrf(owner: Any) -> None:
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner, backend="leb.accounts.backends.EmailOrPhoneBackend")
    assert client.get("/notifications/preferences/rotate-secret/").status_code == 405
    assert client.post("/notifications/preferences/rotate-secret/").status_code == 403
    assert not NotificationPreference.objects.filter(user=owner).exists()


def test_masking() -> None:
    assert mask_destination("email", "owner@example.com") == "o***r@example.com"
    assert mask_destination("sms", "+85291234567") == "+852 9••• 4567"
    assert (
        mask_destination("webhook", "https://hooks.example.com/a/b?c")
        == "https://hooks.example.com/…"
    )
