"""The top-up message says what the books say: the days really added, how
it was paid, who sold it, and a receipt link the reader can open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.test import Client

import leb.sms
from leb.notifications.delivery import deliver_due_notifications
from leb.notifications.models import Channel, Notification
from leb.testing import topup

from .helpers import SmtpInbox, make_user


def test_a_capped_top_up_says_the_days_it_really_added(
    smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a line 210 days from expiry under a 365-day cap
    user = make_user(language="en")
    line = make_line(owner=user)
    topup(line, hkd_plan, now=now)
    deliver_due_notifications(now)
    smtp.messages.clear()

    # when it is topped up with 180 more days
    order = topup(line, hkd_plan, now=now)
    deliver_due_notifications(now)

    # then the email says 155 days, not 180, and names the method and seller
    assert order.days_added == 155
    (message,) = smtp.messages
    assert "Days added: 155 (the plan gives 180;" in message.body
    assert "Paid with: Test payment (sandbox)" in message.body
    assert "sandbox\n" not in message.body
    assert "Sold by leb" in message.body


def test_a_full_top_up_states_the_plain_days_in_chinese(
    smtp: SmtpInbox, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given a Traditional Chinese reader
    user = make_user(language="zh-hant")
    line = make_line(owner=user)

    # when
    topup(line, hkd_plan, now=now)
    deliver_due_notifications(now)

    # then the method is in words, in the reader's language
    (message,) = smtp.messages
    assert "180" in message.body
    assert "Test payment" not in message.body
    assert "測試付款" in message.body


def test_a_guest_line_gets_a_receipt_link_it_can_open(
    make_line: Any, hkd_plan: Any, now: datetime, client: Client
) -> None:
    # given a line nobody has bound to an account
    line = make_line()

    # when it is topped up and the SMS goes out
    topup(line, hkd_plan, now=now)
    deliver_due_notifications(now)

    # then the link in the SMS is the signed guest receipt, which opens signed out
    (sms,) = [m for m in leb.sms.outbox if m.to == line.msisdn]
    url = next(word for word in sms.text.split() if "/receipts/guest/" in word)
    path = url.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200
    assert Notification.objects.filter(line=line, channel=Channel.SMS).count() == 1


def test_a_top_up_that_adds_only_credit_says_so_by_sms(make_line: Any, now: datetime) -> None:
    # given a line already valid to the cap and a plan with credit and days
    from datetime import timedelta

    from leb.catalog.models import Plan

    plan = Plan.objects.create(
        code="hk-credit-days",
        name_en="HK$30 / 30 days",
        name_zh_hans="30港元 / 30天",
        name_zh_hant="30港元 / 30日",
        currency="HKD",
        price=3000,
        credit=3000,
        validity_days=30,
    )
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])

    # when it is topped up (credit only, under the 365-day cap)
    order = topup(line, plan, now=now)
    deliver_due_notifications(now)

    # then the SMS says no days were added, not "only 0 days"
    assert order.days_added == 0
    (sms,) = [m for m in leb.sms.outbox if m.to == line.msisdn]
    assert "credit added, no days" in sms.text
    assert "only 0 days" not in sms.text
