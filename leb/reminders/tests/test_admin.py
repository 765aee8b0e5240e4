from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from leb.reminders.actions import do_rotate_calendar_feed, scan_reminders
from leb.reminders.models import CalendarFeed, SentReminder

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(settings: Any) -> Client:
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "x-long-pass-9")
    client = Client()
    client.force_login(boss)
    return client


def test_staff_see_reminders_and_calendar_links_read_only(
    staff_client: Client, make_line: Any, owner: Any, now: datetime
) -> None:
    # given a sent reminder and a rotated calendar link
    line = make_line(owner=owner)
    scan_reminders(now + timedelta(minutes=1))
    do_rotate_calendar_feed(line, user=owner, now=now)
    sent = SentReminder.objects.get()
    feed = CalendarFeed.objects.get()

    # when / then: lists, search and detail pages open; nothing can be added
    for model, obj in (("sentreminder", sent), ("calendarfeed", feed)):
        changelist = reverse(f"admin:reminders_{model}_changelist")
        assert staff_client.get(changelist).status_code == 200
        assert staff_client.get(changelist, {"q": "+852 9"}).status_code == 200
        change = reverse(f"admin:reminders_{model}_change", args=[obj.pk])
        assert staff_client.get(change).status_code == 200
        assert staff_client.get(reverse(f"admin:reminders_{model}_add")).status_code == 403
