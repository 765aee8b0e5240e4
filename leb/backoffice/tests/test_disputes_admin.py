"""The back office's dispute screens: escalate a ticket, refund part of the
dispute (within the support limit), reject; bad input is said on the form
and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from leb.backoffice.roles import FINANCE, SUPPORT
from leb.common import clock
from leb.payments.models import Refund, RefundStatus
from leb.support.models import Dispute, DisputeStatus

from .disputes import paid_order, ticket_about

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen(now: datetime) -> Any:
    with clock.frozen(now):
        yield


def member(django_user_model: Any, role: str) -> Client:
    user = django_user_model.objects.create_user(f"{role}-1", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_support_escalates_refunds_part_and_sees_the_refund(
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a ticket about a line with a paid HK$50 top-up
    line = make_line()
    order = paid_order(line, hkd_plan, now)
    ticket = ticket_about(line, now)
    support = member(django_user_model, SUPPORT)
    # when support opens the ticket, then it offers the escalation
    page = support.get(reverse("admin:support_ticket_change", args=[ticket.pk])).content.decode()
    escalate = reverse("admin:support_ticket_escalate", args=[ticket.pk])
    assert escalate in page and "Escalate to dispute" in page
    # when support escalates it about that top-up
    form = support.get(escalate).content.decode()
    assert order.receipt_number and order.receipt_number in form
    answer = support.post(escalate, {"order": order.pk, "amount": "", "reason": "Charged twice"})
    # then the dispute is open, asking the whole price back
    dispute = Dispute.objects.get(ticket=ticket)
    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:support_dispute_change", args=[dispute.pk])
    assert (dispute.status, dispute.amount_requested) == (DisputeStatus.OPEN, 5000)
    # when support refunds HK$20 of it
    refund_url = reverse("admin:support_dispute_refund", args=[dispute.pk])
    assert "Refund" in support.get(answer["Location"]).content.decode()
    done = support.post(refund_url, {"amount": "20"}, follow=True)
    # then the refund is confirmed and listed on the dispute
    text = done.content.decode()
    assert "Refund of HKD" in text and "confirmed by the provider" in text
    refund = Refund.objects.get()
    assert (refund.amount, refund.status) == (2000, RefundStatus.CONFIRMED)
    assert refund.idempotency_key in text
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED
    ledger_ok()


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "Enter the amount as a number"),
        ("20.001", "at most 2 decimal places"),
        ("0", "greater than zero"),
        ("50.01", "can still be refunded"),
    ],
)
def test_a_bad_refund_amount_is_said_on_the_form_and_refunds_nothing(
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    amount: str,
    message: str,
) -> None:
    from .disputes import disputed

    dispute = disputed(make_line(), hkd_plan, now)
    finance = member(django_user_model, FINANCE)
    answer = finance.post(
        reverse("admin:support_dispute_refund", args=[dispute.pk]), {"amount": amount}
    )
    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not Refund.objects.exists()


def test_support_is_told_its_limit_and_finance_refunds_it(
    settings: Any,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    from .disputes import disputed

    # given a support limit of HK$30
    settings.SUPPORT_REFUND_LIMITS = {"HKD": 3000}
    dispute = disputed(make_line(), hkd_plan, now)
    url = reverse("admin:support_dispute_refund", args=[dispute.pk])
    # when support refunds the whole HK$50
    answer = member(django_user_model, SUPPORT).post(url, {"amount": ""})
    # then it is refused with the reason
    assert answer.status_code == 400
    assert "need the finance role" in answer.content.decode()
    assert not Refund.objects.exists()
    # when finance does, then it is refunded
    assert member(django_user_model, FINANCE).post(url, {"amount": ""}).status_code == 302
    assert Refund.objects.get().amount == 5000


def test_a_top_up_of_someone_else_cannot_be_chosen(
    django_user_model: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given a ticket about one line and a top-up of another
    ticket = ticket_about(make_line(), now)
    other = paid_order(make_line(), hkd_plan, now)
    support = member(django_user_model, SUPPORT)
    # when support posts the other top-up
    answer = support.post(
        reverse("admin:support_ticket_escalate", args=[ticket.pk]),
        {"order": other.pk, "reason": "x"},
    )
    # then the form refuses it and nothing is written
    assert answer.status_code == 400
    assert "Select a valid choice" in answer.content.decode()
    assert not Dispute.objects.exists()


def test_support_rejects_an_open_dispute_with_a_note(
    django_user_model: Any, make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    from .disputes import disputed

    dispute = disputed(make_line(), hkd_plan, now)
    support = member(django_user_model, SUPPORT)
    url = reverse("admin:support_dispute_reject", args=[dispute.pk])
    assert support.post(url, {"note": ""}).status_code == 400
    assert support.post(url, {"note": "The top-up reached the line."}).status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.decision_note) == (
        DisputeStatus.REJECTED,
        "The top-up reached the line.",
    )
    # and a rejected dispute offers no refund any more
    page = support.get(reverse("admin:support_dispute_change", args=[dispute.pk])).content.decode()
    assert reverse("admin:support_dispute_refund", args=[dispute.pk]) not in page
