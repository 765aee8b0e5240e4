"""The demo's support queue: a support lead finds tickets to answer and a
dispute refunded in part, in books that balance."""

from __future__ import annotations

from datetime import datetime

import pytest

from leb.ops.demo import DEMO_USERNAME, load_demo
from leb.payments.models import Refund, RefundStatus
from leb.support.models import DisputeStatus, Ticket, TicketStatus

pytestmark = pytest.mark.django_db


def test_the_demo_has_a_support_queue_with_a_dispute_refunded_in_part(
    now: datetime, ledger_ok: object
) -> None:
    # when the demo is loaded
    load_demo(now=now)

    # then the demo subscriber has three tickets: waiting, answered, disputed
    tickets = Ticket.objects.filter(user__username=DEMO_USERNAME)
    assert tickets.count() == 3
    assert tickets.filter(status=TicketStatus.ANSWERED).count() == 1
    (disputed,) = [t for t in tickets if hasattr(t, "dispute")]
    dispute = disputed.dispute
    assert dispute.status == DisputeStatus.REFUNDED
    # and a fifth of the top-up went back, confirmed by the sandbox gateway
    (refund,) = Refund.objects.filter(attempt__order=dispute.order)
    assert refund.status == RefundStatus.CONFIRMED
    assert refund.amount == dispute.order.price // 5
    dispute.order.refresh_from_db()
    assert dispute.order.refund_due is False
    ledger_ok()  # type: ignore[operator]


def test_a_second_demo_load_adds_no_ticket_or_refund(now: datetime) -> None:
    load_demo(now=now)
    tickets, refunds = Ticket.objects.count(), Refund.objects.count()
    load_demo(now=now)
    assert (Ticket.objects.count(), Refund.objects.count()) == (tickets, refunds)
