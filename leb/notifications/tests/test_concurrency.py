"""Real concurrency on PostgreSQL: several connections racing on the same rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.db import connection

import leb.sms
from leb.notifications.actions import NotifyRequest, notify, notify_many
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Notification, Status
from leb.testing import race

from .helpers import make_user, receipt_context

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks"),
]


def test_two_workers_notifying_the_same_event_write_one_row(make_line: Any, now: datetime) -> None:
    # given
    user = make_user(phone="+85291230001")
    line = make_line(owner=user)

    # when four workers notify the same event at once
    results = race(
        4,
        lambda i: notify(
            kind="topup_succeeded",
            context=receipt_context(now),
            dedupe_key="order:same",
            line=line,
            now=now,
        ),
    )

    # then one row per channel
    assert not [r for r in results if isinstance(r, Exception)]
    assert Notification.objects.count() == 2
    assert all(len(r) == 2 for r in results)


def test_two_jobs_notifying_many_at_once_write_each_row_once(make_line: Any, now: datetime) -> None:
    # given 40 lines without owners
    lines = [make_line() for _ in range(40)]
    requests = [
        NotifyRequest(
            kind="expiry_reminder", context={}, dedupe_key=f"r:{line.pk}", line_id=line.pk
        )
        for line in lines
    ]

    # when
    results = race(3, lambda i: notify_many(requests, now=now))

    # then
    assert not [r for r in results if isinstance(r, Exception)]
    assert Notification.objects.count() == 40


def test_two_delivery_workers_send_each_message_once(make_line: Any, now: datetime) -> None:
    # given 30 SMS to send
    leb.sms.outbox.clear()
    lines = [make_line() for _ in range(30)]
    for line in lines:
        notify(
            kind="topup_succeeded",
            context=receipt_context(now),
            dedupe_key=f"d:{line.pk}",
            line=line,
            now=now,
        )

    # when three workers deliver at once, in small batches
    results = race(3, lambda i: deliver_due_notifications(now, batch_size=4))

    # then each message went out exactly once
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.sent for r in results) == 30
    assert sorted(m.to for m in leb.sms.outbox) == sorted(line.msisdn for line in lines)
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
