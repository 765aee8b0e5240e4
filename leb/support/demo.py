"""The demo's support queue: what a support lead finds on a working day. The
demo subscriber has a ticket waiting for support, one answered, and one
escalated to a dispute about a card top-up and refunded in part."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leb.common import clock
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.topups.models import OrderStatus, TopUpOrder

from .actions import do_escalate_ticket, do_open_ticket, do_refund_dispute, do_reply
from .models import Ticket, TicketCategory


def _disputable_order(subscriber: Any) -> TopUpOrder | None:
    """The subscriber's latest completed card top-up paid at the sandbox."""
    paid = PaymentAttempt.objects.filter(provider="sandbox", status=AttemptStatus.SUCCEEDED).values(
        "order_id"
    )
    return (
        TopUpOrder.objects.filter(
            line__owner=subscriber, status=OrderStatus.FULFILLED, pk__in=paid, refund_due=False
        )
        .order_by("-fulfilled_at", "-pk")
        .first()
    )


def load_demo_support(now: datetime, *, subscriber: Any, staff: Any) -> None:
    """Safe to run again: a subscriber who already has tickets gets no more.
    Runs outside a transaction (the refund asks the payment provider)."""
    if Ticket.objects.filter(user=subscriber).exists():
        return
    do_open_ticket(
        user=subscriber,
        subject="Will my number be kept while I am abroad?",
        category=TicketCategory.VALIDITY,
        body="I am away for eight months. Is one top-up of HK$50 enough to keep my number?",
        language="en",
        now=now - timedelta(hours=3),
    )
    answered = do_open_ticket(
        user=subscriber,
        subject="收據寄到哪裡",
        category=TicketCategory.ACCOUNT,
        body="我上次充值的收據寄到哪裡？",  # noqa: RUF001 - Chinese punctuation
        language="zh-hant",
        now=now - timedelta(days=2),
    )
    do_reply(
        answered,
        body="每次充值後，收據會寄到您帳戶的電郵地址；您也可以在網站上隨時下載 PDF 收據。",  # noqa: RUF001
        author=staff,
        as_staff=True,
        now=now - timedelta(days=2) + timedelta(hours=1),
    )
    order = _disputable_order(subscriber)
    if order is None:
        return
    at = now - timedelta(days=1, hours=2)
    disputed = do_open_ticket(
        user=subscriber,
        subject="Charged for more than I meant",
        category=TicketCategory.PAYMENT,
        body="I meant to top up HK$30, not the whole plan. Please give the difference back.",
        line=order.line,
        order=order,
        language="en",
        now=at,
    )
    dispute = do_escalate_ticket(
        disputed,
        order=order,
        reason="Subscriber chose the wrong plan",
        staff=staff,
        amount_requested=order.price // 5,
        now=at + timedelta(minutes=30),
    )
    # The sandbox gateway books the refund at the clock's time: the demo's.
    refunded_at = at + timedelta(minutes=40)
    with clock.frozen(refunded_at):
        do_refund_dispute(dispute, staff=staff, amount=order.price // 5, now=refunded_at)
