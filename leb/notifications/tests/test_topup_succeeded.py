from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

import leb.sms
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Channel, Notification, Status
from leb.testing import topup
from leb.topups.actions import do_fulfil_order

from .helpers import SmtpInbox, make_user

pytestmark = pytest.mark.django_db


def test_a_fulfilled_top_up_sends_one_receipt_with_its_link(
    settings: Any, smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a subscriber's line
    settings.SITE_URL = "https://leb.example.com"
    user = make_user(phone="+85291230000", language="zh-hans")
    line = make_line(owner=user)

    # when it is topped up, and the fulfilment is replayed
    order = topup(line, hkd_plan, now=now)
    do_fulfil_order(order, now=now + timedelta(minutes=1))
    result = deliver_due_notifications(now + timedelta(minutes=1))

    # then one email and one SMS, each once, with the absolute receipt link
    link = "https://leb.example.com" + reverse(
        "receipts:detail", kwargs={"receipt_number": order.receipt_number}
    )
    rows = Notification.objects.filter(kind="topup_succeeded")
    assert sorted(rows.values_list("channel", flat=True)) == [Channel.EMAIL, Channel.SMS]
    assert set(rows.values_list("dedupe_key", flat=True)) == {f"order:{order.public_id}"}
    assert result.sent == 2
    (mail,) = smtp.messages
    assert mail.to == [user.email]
    assert link in mail.body
    assert order.receipt_number in mail.subject
    assert "HK$" in mail.body
    (sms,) = leb.sms.outbox
    assert sms.to == "+85291230000"
    assert link in sms.text
    assert all(row.status == Status.SENT for row in rows)
    ledger_ok()


def test_the_receipt_context_holds_the_new_validity(
    make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given
    line = make_line()

    # when
    order = topup(line, hkd_plan, now=now)

    # then
    (row,) = Notification.objects.filter(kind="topup_succeeded")
    assert row.context["receipt_number"] == order.receipt_number
    assert row.context["valid_until"] == order.valid_until_after.isoformat()
    assert row.context["paid_amount"] == order.price
    assert row.context["paid_currency"] == "HKD"
    assert row.valid_until_snapshot == order.valid_until_after
