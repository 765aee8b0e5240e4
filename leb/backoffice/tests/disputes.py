"""A ticket with a dispute and a refund, for the back-office tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from leb.backoffice.roles import SUPPORT
from leb.payments.actions import do_start_attempt, settle
from leb.payments.providers.base import SUCCEEDED, Outcome
from leb.testing import next_serial
from leb.topups.actions import do_create_order
from leb.topups.models import TopUpOrder


def paid_order(line: Any, plan: Any, now: datetime) -> TopUpOrder:
    """A top-up of `line` paid by card through the sandbox and fulfilled."""
    order = do_create_order(
        line=line, channel="web", plan=plan, idempotency_key=f"bo-dispute:{next_serial()}", now=now
    )
    attempt = do_start_attempt(order, "sandbox", now=now)
    settle(attempt, Outcome(SUCCEEDED, amount=attempt.amount, currency=attempt.currency), now=now)
    return TopUpOrder.objects.get(pk=order.pk)


def ticket_about(line: Any, now: datetime) -> Any:
    from leb.support.actions import do_open_ticket

    return do_open_ticket(
        user=None,
        subject="Charged for nothing",
        category="payment",
        body="Please refund me.",
        contact_email="guest@example.com",
        line=line,
        now=now,
    )


def disputed(line: Any, plan: Any, now: datetime, *, refund: int | None = None) -> Any:
    """A ticket about `line` escalated to a dispute about a paid top-up,
    refunded by `refund` minor units when given."""
    from leb.support.actions import do_escalate_ticket, do_refund_dispute

    order = paid_order(line, plan, now)
    clerk = get_user_model().objects.create_user(
        f"clerk-{next_serial()}", password="x-unused-9", is_staff=True
    )
    clerk.groups.add(Group.objects.get(name=SUPPORT))
    clerk = get_user_model().objects.get(pk=clerk.pk)
    dispute = do_escalate_ticket(
        ticket_about(line, now), order=order, reason="Charged twice", staff=clerk, now=now
    )
    if refund is not None:
        do_refund_dispute(dispute, staff=clerk, amount=refund, now=now)
    return dispute
