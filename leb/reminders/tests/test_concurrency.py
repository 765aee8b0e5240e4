"""Two scans at once on PostgreSQL: every reminder still goes out exactly once.
(SQLite serialises writers with IMMEDIATE transactions: no race to test there.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from leb.notifications.models import Notification
from leb.reminders.actions import scan_reminders
from leb.reminders.models import SentReminder
from leb.testing import race

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def test_two_scans_at_once_send_each_reminder_once(make_line: Any, now: datetime) -> None:
    # given 40 lines whose 30-day reminder is due
    lines = [make_line() for _ in range(40)]

    # when two workers scan at the same moment, in small batches
    results = race(2, lambda i: scan_reminders(now + timedelta(minutes=1), batch_size=5))

    # then each line got one reminder row and one message, split between the workers
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r.sent for r in results) == 40
    assert SentReminder.objects.count() == 40
    assert Notification.objects.count() == 40
    assert set(Notification.objects.values_list("line_id", flat=True)) == {
        line.pk for line in lines
    }


def test_a_rerun_after_a_race_sends_nothing(make_line: Any, now: datetime) -> None:
    # given two racing scans that already sent the reminders
    for _ in range(10):
        make_line()
    moment = now + timedelta(minutes=1)
    race(2, lambda i: scan_reminders(moment, batch_size=3))

    # when they both run again
    again = race(2, lambda i: scan_reminders(moment, batch_size=3))

    # then nothing new
    assert [r.sent for r in again] == [0, 0]
    assert Notification.objects.count() == 10
