from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leb.notifications.demo import load_demo_notifications
from leb.notifications.models import Channel, Notification, Reason, Status
from leb.testing import topup

pytestmark = pytest.mark.django_db


def test_demo_notifications_show_each_outcome(
    make_line: Any, hkd_plan: Any, now: datetime, django_user_model: Any
) -> None:
    # given the demo subscriber with a topped-up line
    from leb.accounts.actions import do_mark_contacts_verified

    demo = django_user_model.objects.create_user("demo", "demo@example.com", "pw-demo-1234")
    do_mark_contacts_verified(demo)
    line = make_line(owner=demo)
    topup(line, hkd_plan, now=now)

    # when loaded twice
    load_demo_notifications(now)
    load_demo_notifications(now)

    # then
    rows = Notification.objects.filter(user=demo, dedupe_key__startswith="demo:")
    outcome = {row.channel: (row.status, row.reason) for row in rows}
    assert outcome == {
        Channel.EMAIL: (Status.SENT, ""),
        Channel.SMS: (Status.SENT, ""),
        Channel.WEBHOOK: (Status.FAILED, Reason.DESTINATION_REFUSED),
    }
    assert Notification.objects.filter(user=demo, status=Status.PENDING).count() == 0
    assert Notification.objects.filter(user=demo).count() == 4


def test_demo_notifications_on_the_full_demo(now: datetime) -> None:
    # given the demo data
    from leb.ops.demo import load_demo

    load_demo(now=now)

    # when
    load_demo_notifications(now)

    # then the demo subscriber has one of each outcome
    statuses = set(
        Notification.objects.filter(user__username="demo").values_list("channel", "status")
    )
    assert {
        (Channel.EMAIL, Status.SENT),
        (Channel.SMS, Status.SENT),
        (Channel.WEBHOOK, Status.FAILED),
    } <= statuses
