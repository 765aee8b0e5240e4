from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.notifications.actions import do_save_notification_preferences, notify
from leb.notifications.models import Notification, NotificationPreference

from .helpers import make_user, receipt_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    staff = django_user_model.objects.create_superuser("ops-n", "ops-n@example.com", "pw-ops-1234")
    client = Client()
    client.force_login(staff)
    return client


def test_staff_can_browse_notifications_read_only(
    staff_client: Client, make_line: Any, now: datetime, django_assert_max_num_queries: Any
) -> None:
    # given
    for n in range(5):
        user = make_user(phone=f"+8529123456{n}")
        do_save_notification_preferences(user, sms_enabled=True)
        notify(
            kind="topup_succeeded",
            context=receipt_context(now),
            dedupe_key=f"a{n}",
            line=make_line(owner=user),
            now=now,
        )
    changelist = reverse("admin:notifications_notification_changelist")
    staff_client.get(changelist)

    # when / then: the list, its filters and search
    with django_assert_max_num_queries(12):
        assert staff_client.get(changelist).status_code == 200
    assert staff_client.get(changelist, {"status__exact": "pending"}).status_code == 200
    assert staff_client.get(changelist, {"channel__exact": "sms"}).status_code == 200
    found = staff_client.get(changelist, {"q": "+85291234562"})
    assert "+85291234562" in found.content.decode()
    row = Notification.objects.first()
    assert row is not None
    detail = staff_client.get(reverse("admin:notifications_notification_change", args=[row.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()
    assert staff_client.get(reverse("admin:notifications_notification_add")).status_code == 403
    prefs = reverse("admin:notifications_notificationpreference_changelist")
    assert staff_client.get(prefs).status_code == 200
    pref = NotificationPreference.objects.first()
    assert pref is not None
    assert (
        staff_client.get(
            reverse("admin:notifications_notificationpreference_change", args=[pref.pk])
        ).status_code
        == 200
    )
