"""Disputes: a ticket escalated to a claim about one of the subscriber's
top-ups, refunded (in part or whole) through the provider or rejected; each
step audited and told to the subscriber in their ticket."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.backoffice.roles import FINANCE, SUPPORT
from leb.ledger.queries import balance_by_code
from leb.payments.actions import do_start_attempt, settle
from leb.payments.models import Refund, RefundStatus
from leb.payments.providers.base import SUCCEEDED, Outcome
from leb.payments.tests.helpers import deliver_pending_webhooks, pending_webhooks
from leb.support.actions import (
    DisputeError,
    do_close_dispute,
    do_escalate_ticket,
    do_open_ticket,
    do_refund_dispute,
    do_reject_dispute,
    do_retry_dispute_refund,
)
from leb.support.models import Dispute, DisputeEvent, DisputeStatus
from leb.testing import race_all
from leb.topups.actions import do_create_order
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db


def staff_in(django_user_model: Any, role: str | None) -> Any:
    user = django_user_model.objects.create_user(
        f"{role or 'nobody'}-staff", password="x-unused-9", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def support(django_user_model: Any) -> Any:
    return staff_in(django_user_model, SUPPORT)


@pytest.fixture
def finance(django_user_model: Any) -> Any:
    return staff_in(django_user_model, FINANCE)


def paid_order(line: Any, plan: Any, customer: Any, now: datetime) -> TopUpOrder:
    """A top-up of `line` paid by card through the sandbox and fulfilled."""
    order = do_create_order(
        line=line,
        channel="web",
        plan=plan,
        customer=customer,
        idempotency_key=f"dispute-test:{line.pk}:{TopUpOrder.objects.count()}",
        now=now,
    )
    attempt = do_start_attempt(order, "sandbox", now=now)
    settle(attempt, Outcome(SUCCEEDED, amount=attempt.amount, currency=attempt.currency), now=now)
    return TopUpOrder.objects.get(pk=order.pk)


@pytest.fixture
def order(owner_line: Any, owner: Any, hkd_plan: Any, now: datetime) -> TopUpOrder:
    return paid_order(owner_line, hkd_plan, owner, now)


@pytest.fixture
def ticket(owner: Any, now: datetime) -> Any:
    return do_open_ticket(
        user=owner,
        subject="I was charged for a top-up I did not want",
        category="payment",
        body="Please give me my money back.",
        now=now,
    )


def kinds(dispute: Dispute) -> list[str]:
    return list(dispute.events.values_list("kind", flat=True))


def test_support_escalates_a_ticket_about_the_subscribers_top_up(
    ticket: Any, order: TopUpOrder, support: Any, now: datetime
) -> None:
    # when support escalates the ticket about the owner's top-up
    dispute = do_escalate_ticket(
        ticket, order=order, reason="Charged twice, says the bank", staff=support, now=now
    )
    # then an open dispute asks the whole price back, and it is audited
    assert (dispute.status, dispute.amount_requested, dispute.currency) == ("open", 5000, "HKD")
    assert kinds(dispute) == ["escalated"]
    entry = AuditEntry.objects.get(action="dispute.open")
    assert (entry.actor, entry.target) == ("staff:support-staff", f"dispute:{dispute.pk}")


def test_an_order_of_another_subscriber_cannot_be_disputed_on_this_ticket(
    ticket: Any,
    make_line: Any,
    outsider: Any,
    hkd_plan: Any,
    support: Any,
    now: datetime,
) -> None:
    # given a top-up of someone else's line
    other = paid_order(make_line(owner=outsider), hkd_plan, outsider, now)
    # when support tries to dispute it on the owner's ticket
    with pytest.raises(DisputeError) as refused:
        do_escalate_ticket(ticket, order=other, reason="x", staff=support, now=now)
    # then it is refused and nothing is written
    assert refused.value.code == "wrong_owner"
    assert not Dispute.objects.exists()
    assert not AuditEntry.objects.filter(action="dispute.open").exists()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("reason", "  ", "reason"),
        ("amount_requested", 0, "amount"),
        ("amount_requested", 5001, "amount"),
    ],
)
def test_a_dispute_needs_a_reason_and_a_sensible_amount(
    ticket: Any, order: TopUpOrder, support: Any, now: datetime, field: str, value: Any, code: str
) -> None:
    arguments: dict[str, Any] = {"reason": "Charged twice", field: value}
    with pytest.raises(DisputeError) as refused:
        do_escalate_ticket(ticket, order=order, staff=support, now=now, **arguments)
    assert refused.value.code == code
    assert not Dispute.objects.exists()


def test_staff_without_the_permission_cannot_escalate(
    ticket: Any, order: TopUpOrder, django_user_model: Any, now: datetime
) -> None:
    nobody = staff_in(django_user_model, None)
    with pytest.raises(PermissionDenied):
        do_escalate_ticket(ticket, order=order, reason="x", staff=nobody, now=now)


def test_a_ticket_is_escalated_once_and_an_order_has_one_open_dispute(
    ticket: Any, order: TopUpOrder, owner: Any, support: Any, now: datetime
) -> None:
    # given a dispute about the order
    do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    second_ticket = do_open_ticket(
        user=owner, subject="Again", category="payment", body="Still waiting", now=now
    )
    # when the same ticket, or another ticket about the same order, is escalated
    with pytest.raises(DisputeError) as again:
        do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    with pytest.raises(DisputeError) as twice:
        do_escalate_ticket(second_ticket, order=order, reason="x", staff=support, now=now)
    # then both are refused
    assert (again.value.code, twice.value.code) == ("already_escalated", "already_disputed")
    assert Dispute.objects.count() == 1


def test_support_refunds_part_of_a_dispute_and_the_subscriber_sees_it(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    owner_client: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a dispute about a HK$50 top-up
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when support refunds HK$20 (the sandbox confirms at once)
    refund = do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # then the refund is confirmed, the dispute refunded, each step audited
    assert refund.status == RefundStatus.CONFIRMED
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED
    assert kinds(dispute) == ["escalated", "refund_requested", "refund_confirmed"]
    assert (
        AuditEntry.objects.filter(
            action__in=["dispute.refund", "dispute.refunded"], target=f"dispute:{dispute.pk}"
        ).count()
        == 2
    )
    assert balance_by_code(f"wallet:line:{order.line_id}") == 3000
    ledger_ok()
    # and the subscriber's ticket tells the story in their language
    page = owner_client.get(reverse("support:ticket", args=[ticket.public_id]))
    text = page.content.decode()
    assert page.status_code == 200
    assert f"Escalated to a dispute about order #{order.receipt_number}" in text
    assert "Refund of HK$20.00 requested" in text
    assert "Refund of HK$20.00 confirmed by the card issuer" in text


def test_support_cannot_refund_above_its_limit_and_finance_can(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    finance: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a support limit of HK$30 and HK$20 already refunded by support
    settings.SUPPORT_REFUND_LIMITS = {"HKD": 3000}
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # when support refunds HK$20 more (HK$40 in all)
    with pytest.raises(DisputeError) as refused:
        do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # then it is refused with the reason, and nothing more was refunded
    assert refused.value.code == "limit"
    assert "need the finance role" in refused.value.messages[0]
    assert Refund.objects.count() == 1
    # when finance refunds the rest, then the order is refunded in full
    do_refund_dispute(dispute, staff=finance, now=now)
    assert TopUpOrder.objects.get(pk=order.pk).status == "refunded"
    assert Refund.objects.count() == 2
    ledger_ok()


def test_a_refund_over_what_was_paid_is_refused(
    ticket: Any, order: TopUpOrder, support: Any, finance: Any, now: datetime
) -> None:
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    with pytest.raises(DisputeError) as refused:
        do_refund_dispute(dispute, amount=5001, staff=finance, now=now)
    assert refused.value.code == "over_refund"
    assert kinds(dispute) == ["escalated"]


def test_staff_without_a_refund_permission_cannot_refund(
    ticket: Any, order: TopUpOrder, support: Any, django_user_model: Any, now: datetime
) -> None:
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    with pytest.raises(PermissionDenied):
        do_refund_dispute(dispute, staff=staff_in(django_user_model, None), now=now)


def test_a_refund_confirmed_by_webhook_refunds_the_dispute_once(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    from leb.payments.tasks import deliver_sandbox_webhook, use_transport
    from leb.payments.tests.conftest import ClientTransport

    # given a gateway that confirms refunds by webhook
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when support refunds HK$20
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # then the dispute waits for the provider, and the order is due a refund
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUND_REQUESTED
    assert TopUpOrder.objects.get(pk=order.pk).refund_due
    # and it cannot be closed meanwhile
    with pytest.raises(DisputeError) as waiting:
        do_close_dispute(dispute, staff=support, now=now)
    assert waiting.value.code == "refund_waiting"
    # when the provider's webhook arrives, twice
    (body,) = pending_webhooks()[0].args_kwargs["args"]
    transport = ClientTransport()
    with use_transport(transport):
        assert deliver_pending_webhooks() == ["delivered"]
        assert deliver_sandbox_webhook.call(body) == "delivered"
    assert [r.json()["outcome"] for r in transport.responses] == ["refund_confirmed", "duplicate"]
    # then the dispute is refunded, told once
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED
    assert kinds(dispute) == ["escalated", "refund_requested", "refund_confirmed"]
    assert not TopUpOrder.objects.get(pk=order.pk).refund_due
    ledger_ok()


def test_a_provider_failure_keeps_the_dispute_waiting_until_a_retry(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a gateway that does not answer
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when support refunds HK$20
    refund = do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # then the refund failed and is retryable; the dispute still waits
    assert refund.status == RefundStatus.FAILED
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUND_REQUESTED
    assert kinds(dispute) == ["escalated", "refund_requested", "refund_failed"]
    assert TopUpOrder.objects.get(pk=order.pk).refund_due
    # when the gateway is back and support retries
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    retried = do_retry_dispute_refund(dispute, refund, staff=support, now=now)
    # then it is confirmed under the same key and the dispute is refunded
    assert (retried.status, retried.idempotency_key) == (
        RefundStatus.CONFIRMED,
        refund.idempotency_key,
    )
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED
    assert not TopUpOrder.objects.get(pk=order.pk).refund_due
    ledger_ok()


def test_rejecting_and_closing_a_dispute(
    ticket: Any, order: TopUpOrder, support: Any, owner_client: Any, now: datetime
) -> None:
    # given an open dispute
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when it is rejected without a reason, then that is refused
    with pytest.raises(DisputeError) as bare:
        do_reject_dispute(dispute, note=" ", staff=support, now=now)
    assert bare.value.code == "note"
    # when it is rejected with one
    do_reject_dispute(dispute, note="The top-up reached your line.", staff=support, now=now)
    # then it is rejected, nothing can be refunded, and it can only be closed
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REJECTED
    with pytest.raises(DisputeError) as decided:
        do_refund_dispute(dispute, staff=support, now=now)
    assert decided.value.code == "decided"
    with pytest.raises(DisputeError) as again:
        do_reject_dispute(dispute, note="again", staff=support, now=now)
    assert again.value.code == "not_open"
    do_close_dispute(dispute, staff=support, now=now)
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.CLOSED
    assert kinds(dispute) == ["escalated", "rejected", "closed"]
    assert AuditEntry.objects.filter(action__in=["dispute.reject", "dispute.close"]).count() == 2
    # and the subscriber reads why
    text = owner_client.get(reverse("support:ticket", args=[ticket.public_id])).content.decode()
    assert "The top-up reached your line." in text
    assert not Refund.objects.exists()


def test_a_refunded_dispute_cannot_be_rejected(
    ticket: Any, order: TopUpOrder, support: Any, now: datetime
) -> None:
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    do_refund_dispute(dispute, amount=1000, staff=support, now=now)
    with pytest.raises(DisputeError) as refused:
        do_reject_dispute(dispute, note="no", staff=support, now=now)
    assert refused.value.code == "not_open"
    assert DisputeEvent.objects.filter(kind="rejected").count() == 0


def test_a_guest_reads_the_dispute_through_their_private_link(
    make_line: Any, hkd_plan: Any, support: Any, now: datetime
) -> None:
    from django.test import Client

    from leb.support.tokens import make_token

    # given a guest's ticket about their line, escalated and refunded in part
    line = make_line()
    order = paid_order(line, hkd_plan, None, now)
    ticket = do_open_ticket(
        user=None,
        subject="Refund please",
        category="payment",
        body="Wrong amount",
        contact_email="guest@example.com",
        line=line,
        now=now,
    )
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    do_refund_dispute(dispute, amount=1500, staff=support, now=now)
    # when the guest opens their private link
    page = Client().get(reverse("support:guest_thread", args=[make_token(ticket)]))
    # then the steps are there
    text = page.content.decode()
    assert page.status_code == 200
    assert "Refund of HK$15.00 requested" in text
    assert "Refund of HK$15.00 confirmed by the card issuer" in text


def test_a_full_refund_retried_applies_the_reversal_and_validity_rule_once(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    from leb.lines.models import Line

    # given a full refund whose provider call failed
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    refund = do_refund_dispute(dispute, staff=support, now=now)
    after_reversal = Line.objects.get(pk=order.line_id).valid_until
    assert TopUpOrder.objects.get(pk=order.pk).status == "refunded"
    # when it is asked again, and succeeds
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    do_retry_dispute_refund(dispute, refund, staff=support, now=now)
    # then the top-up was reversed and its days taken back once
    assert Line.objects.get(pk=order.line_id).valid_until == after_reversal
    assert AuditEntry.objects.filter(action="topup.refund").count() == 1
    assert not TopUpOrder.objects.get(pk=order.pk).refund_due
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    ledger_ok()


def test_the_support_limit_refusal_writes_nothing(
    ticket: Any, order: TopUpOrder, support: Any, settings: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a support limit of HK$30
    settings.SUPPORT_REFUND_LIMITS = {"HKD": 3000}
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when support refunds everything that is left (HK$50)
    with pytest.raises(DisputeError) as refused:
        do_refund_dispute(dispute, staff=support, now=now)
    # then it is refused with the translated reason, and the books are untouched
    assert refused.value.code == "limit"
    assert refused.value.messages == ["Refunds above HK$30.00 need the finance role."]
    assert not Refund.objects.exists()
    assert kinds(dispute) == ["escalated"]
    assert not AuditEntry.objects.filter(action="payment.refund.request").exists()
    assert not TopUpOrder.objects.get(pk=order.pk).refund_due
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    ledger_ok()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
@pytest.mark.parametrize("round_", range(3))
def test_two_support_refunds_at_the_same_moment_cannot_together_pass_the_limit(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    django_user_model: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
    round_: int,
) -> None:
    # given a support limit of HK$40 and two members of support on one HK$50 dispute
    settings.SUPPORT_REFUND_LIMITS = {"HKD": 4000}
    colleague = django_user_model.objects.create_user(
        "support-colleague", password="x-unused-9", is_staff=True
    )
    colleague.groups.add(Group.objects.get(name=SUPPORT))
    colleague = django_user_model.objects.get(pk=colleague.pk)
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)

    def refund_25(staff: Any) -> Any:
        return lambda: do_refund_dispute(dispute, amount=2500, staff=staff, now=now)

    # when each refunds HK$25 at the same moment (HK$50 together)
    results = race_all([refund_25(support), refund_25(colleague)])
    # then one refund is made and the other refused by the limit
    made = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, DisputeError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].code == "limit"
    assert Refund.objects.filter(attempt__order=order).count() == 1
    assert balance_by_code(f"wallet:line:{order.line_id}") == 2500
    ledger_ok()


# --- The subscriber is told each step -------------------------------------------------


def dispute_messages() -> list[Any]:
    from leb.notifications.models import Notification

    return list(Notification.objects.filter(kind__startswith="dispute_").order_by("pk"))


def text_of(row: Any) -> str:
    from leb.notifications.render import render

    rendered = render(row)
    return f"{rendered.subject}\n{rendered.body}\n{rendered.sms}"


def test_the_subscriber_is_told_each_step_once_in_their_language(
    make_line: Any,
    hkd_plan: Any,
    support: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    from leb.payments.tasks import deliver_sandbox_webhook, use_transport
    from leb.payments.tests.conftest import ClientTransport

    # given a guest's ticket written in Traditional Chinese, about their line
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    line = make_line()
    order = paid_order(line, hkd_plan, None, now)
    ticket = do_open_ticket(
        user=None,
        subject="退款",
        category="payment",
        body="請退款",
        contact_email="guest@example.com",
        line=line,
        language="zh-hant",
        now=now,
    )
    # when support escalates it
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # then the guest is emailed that it is a dispute, in their language, with their link
    [opened] = dispute_messages()
    assert (opened.kind, opened.channel, opened.destination, opened.language) == (
        "dispute_opened",
        "email",
        "guest@example.com",
        "zh-hant",
    )
    assert opened.secret_keys == "url" and "/support/t/" in opened.context["url"]
    text = text_of(opened)
    assert f"#{order.receipt_number}" in text and "HK$50.00" in text
    assert "爭議" in text
    # when HK$20 is refunded and the provider's webhook confirms it, twice
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    assert [m.kind for m in dispute_messages()] == ["dispute_opened"]
    (body,) = pending_webhooks()[0].args_kwargs["args"]
    with use_transport(ClientTransport()):
        assert deliver_pending_webhooks() == ["delivered"]
        assert deliver_sandbox_webhook.call(body) == "delivered"
    # then the guest is told of the confirmed refund once
    confirmed = [m for m in dispute_messages() if m.kind == "dispute_refund_confirmed"]
    assert len(confirmed) == 1
    assert confirmed[0].language == "zh-hant"
    assert "HK$20.00" in text_of(confirmed[0])
    # when the dispute is closed, and closed again
    do_close_dispute(dispute, staff=support, note="已退款。", now=now)
    do_close_dispute(dispute, staff=support, now=now)
    # then the guest is told once, with the note
    closed = [m for m in dispute_messages() if m.kind == "dispute_closed"]
    assert len(closed) == 1 and "已退款。" in text_of(closed[0])
    ledger_ok()


def test_a_refund_confirmed_at_once_is_told_to_the_account(
    ticket: Any, order: TopUpOrder, support: Any, now: datetime
) -> None:
    # given a dispute on the owner's ticket (written in English)
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when support refunds HK$20 and the card gateway confirms at once
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # then the owner is emailed at their proven address, with the card wording
    confirmed = [m for m in dispute_messages() if m.kind == "dispute_refund_confirmed"]
    assert len(confirmed) == 1
    row = confirmed[0]
    assert (row.destination, row.language, row.secret_keys) == ("owner@example.com", "en", "")
    assert row.context["url"].endswith(f"/{ticket.public_id}/")
    text = text_of(row)
    assert "Refund of HK$20.00 confirmed" in text
    assert "it can take 5 to 10 working days to show on your statement" in text
    assert row.context["url"] in text


def test_a_rejection_is_told_with_its_reason(
    ticket: Any, order: TopUpOrder, support: Any, now: datetime
) -> None:
    # given an open dispute
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # when it is rejected, and a second rejection is refused
    do_reject_dispute(dispute, note="The top-up reached your line.", staff=support, now=now)
    with pytest.raises(DisputeError):
        do_reject_dispute(dispute, note="again", staff=support, now=now)
    # then the subscriber is told once, with why
    rejected = [m for m in dispute_messages() if m.kind == "dispute_rejected"]
    assert len(rejected) == 1
    text = text_of(rejected[0])
    assert "Your dispute was rejected" in text and "The top-up reached your line." in text


def test_a_subscriber_without_a_proven_address_is_texted_or_not_told(
    make_line: Any, hkd_plan: Any, support: Any, now: datetime
) -> None:
    # given a guest who left only a mobile number
    line = make_line()
    order = paid_order(line, hkd_plan, None, now)
    ticket = do_open_ticket(
        user=None,
        subject="Refund",
        category="payment",
        body="Please",
        contact_phone="+85291234567",
        line=line,
        language="zh-hans",
        now=now,
    )
    # when support escalates it
    do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    # then the guest is texted in Simplified Chinese
    [row] = dispute_messages()
    assert (row.channel, row.destination, row.language) == ("sms", "+85291234567", "zh-hans")
    assert "争议" in text_of(row) and "/support/t/" in text_of(row)


# --- A failed refund shown to the subscriber ------------------------------------------


def test_a_failed_refund_is_shown_to_the_subscriber_until_the_retry_succeeds(
    ticket: Any,
    order: TopUpOrder,
    support: Any,
    owner_client: Any,
    settings: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a refund of HK$20 the provider failed, twice
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    refund = do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    do_retry_dispute_refund(dispute, refund, staff=support, now=now)
    page = reverse("support:ticket", args=[ticket.public_id])
    # when the subscriber opens their ticket
    text = owner_client.get(page).content.decode()
    # then they read, once, in plain words, that it is being tried again
    assert text.count("We could not refund HK$20.00 yet; we are trying again.") == 1
    assert "sandbox gateway did not answer" not in text
    # when the retry succeeds
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    do_retry_dispute_refund(dispute, refund, staff=support, now=now)
    # then the failure is gone and the confirmation is there
    text = owner_client.get(page).content.decode()
    assert "We could not refund" not in text
    assert "Refund of HK$20.00 confirmed by the card issuer" in text
    ledger_ok()


def test_a_failed_refund_reads_in_the_subscribers_language(
    ticket: Any, order: TopUpOrder, support: Any, owner_client: Any, settings: Any, now: datetime
) -> None:
    # given a failed refund
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # when the subscriber reads their ticket in Simplified Chinese
    page = owner_client.get(
        reverse("support:ticket", args=[ticket.public_id]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    # then the failure is said in Chinese
    assert "暂未能退款" in page.content.decode()


def test_a_refund_whose_webhook_was_lost_refunds_the_dispute_through_the_job(
    ticket: Any, order: TopUpOrder, support: Any, settings: Any, now: datetime, ledger_ok: Any
) -> None:
    from datetime import timedelta

    from leb.payments.actions import reconcile_pending_refunds

    # given a dispute refund the sandbox answered "pending", its webhook lost
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    dispute = do_escalate_ticket(ticket, order=order, reason="x", staff=support, now=now)
    do_refund_dispute(dispute, amount=2000, staff=support, now=now)
    # when the refunds job runs later, twice
    later = now + timedelta(seconds=settings.REFUNDS_RECONCILE_AFTER_SECONDS)
    reconcile_pending_refunds(later)
    reconcile_pending_refunds(later)
    # then the dispute is refunded and the subscriber told, once
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.REFUNDED
    assert kinds(dispute) == ["escalated", "refund_requested", "refund_confirmed"]
    assert [m.kind for m in dispute_messages()] == ["dispute_opened", "dispute_refund_confirmed"]
    ledger_ok()


def test_a_refunded_dispute_is_not_refunded_again_while_another_about_the_order_is_open(
    ticket: Any, order: TopUpOrder, owner: Any, finance: Any, support: Any, now: datetime
) -> None:
    # given a dispute refunded in part, then a second ticket about the same
    # top-up escalated to a dispute of its own
    first = do_escalate_ticket(ticket, order=order, reason="Wrong plan", staff=support, now=now)
    do_refund_dispute(first, staff=finance, amount=1000, now=now)
    first.refresh_from_db()
    assert first.status == DisputeStatus.REFUNDED
    again = do_open_ticket(
        user=owner, subject="Still charged", category="payment", body="The rest, please.", now=now
    )
    do_escalate_ticket(again, order=order, reason="The rest", staff=support, now=now)
    refunds = Refund.objects.count()

    # when finance refunds from the first dispute
    with pytest.raises(DisputeError) as refused:
        do_refund_dispute(first, staff=finance, amount=1000, now=now)

    # then it is refused before any money moves: the open dispute is the one
    assert refused.value.code == "another_open"
    assert Refund.objects.count() == refunds
    first.refresh_from_db()
    assert first.status == DisputeStatus.REFUNDED
