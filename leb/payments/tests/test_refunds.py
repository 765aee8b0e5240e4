"""Refunds, whole and in part: the books, the provider, retries under one
idempotency key, the provider's refund webhooks, and refunds racing on one
payment."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from leb.audit.models import AuditEntry
from leb.ledger.queries import balance_by_code
from leb.lines.models import Line
from leb.payments.actions import (
    PaymentError,
    do_record_event,
    do_request_refund,
    do_retry_refund,
    do_start_attempt,
    refundable,
    settle,
)
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent, Refund, RefundStatus
from leb.payments.providers.base import SUCCEEDED, Outcome, RefundNotice, WebhookEvent
from leb.testing import race_all
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import deliver_pending_webhooks
from .test_paypal import fake_paypal  # noqa: F401  (fixture)
from .test_stripe import fake_stripe  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def paid_attempt(make_order: Any, now: datetime) -> PaymentAttempt:
    """A HK$50 top-up paid through the sandbox and fulfilled."""
    attempt = do_start_attempt(make_order(), "sandbox", now=now)
    settle(attempt, Outcome(SUCCEEDED, amount=attempt.amount, currency=attempt.currency), now=now)
    attempt.refresh_from_db()
    return attempt


def order_of(attempt: PaymentAttempt) -> TopUpOrder:
    return TopUpOrder.objects.get(pk=attempt.order_id)


def wallet(attempt: PaymentAttempt) -> int:
    return balance_by_code(f"wallet:line:{attempt.order.line_id}")


def test_a_partial_refund_gives_part_back_and_keeps_the_top_up(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a HK$50 top-up paid by card
    attempt = paid_attempt(make_order, now)
    valid_until = Line.objects.get(pk=attempt.order.line_id).valid_until
    # when HK$20 of it is refunded
    refund = do_request_refund(attempt, amount=2000, reason="half used", actor="staff:s", now=now)
    # then the sandbox confirms at once: the wallet gave back HK$20, the order
    # is still a completed top-up with its validity, and nothing is due
    assert refund.status == RefundStatus.CONFIRMED
    assert refund.provider_reference.startswith("sbx_refund_")
    assert refund.idempotency_key == f"refund:{refund.public_id}"
    assert wallet(attempt) == 3000
    order = order_of(attempt)
    assert (order.status, order.refund_due) == (OrderStatus.FULFILLED, False)
    assert Line.objects.get(pk=order.line_id).valid_until == valid_until
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.SUCCEEDED
    assert refundable(attempt) == 3000
    # and each step is in the audit log
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", flat=True))
    assert actions[-3:] == ["topup.refund_part", "payment.refund.request", "payment.refund.confirm"]
    ledger_ok()


def test_refunds_adding_up_to_the_payment_end_as_one_full_refund(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a top-up with HK$20 already refunded
    attempt = paid_attempt(make_order, now)
    line_before = Line.objects.get(pk=attempt.order.line_id)
    do_request_refund(attempt, amount=2000, reason="part", actor="staff:s", now=now)
    # when the rest is refunded (the default amount: all that is left)
    last = do_request_refund(attempt, reason="rest", actor="staff:s", now=now)
    # then the order is refunded, the validity rule took the days back once,
    # the wallet is empty and the payment is refunded in full
    assert (last.amount, last.status) == (3000, RefundStatus.CONFIRMED)
    order = order_of(attempt)
    assert (order.status, order.refund_due) == (OrderStatus.REFUNDED, False)
    assert wallet(attempt) == 0
    line = Line.objects.get(pk=order.line_id)
    assert line.valid_until is not None and line_before.valid_until is not None
    assert line.valid_until < line_before.valid_until
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.REFUNDED
    assert AuditEntry.objects.filter(action="topup.refund").count() == 1
    # and the clearing account is back where it was before the payment
    assert balance_by_code("clearing:sandbox:HKD") == 0
    ledger_ok()
    # and nothing more can be refunded
    with pytest.raises(PaymentError) as refused:
        do_request_refund(attempt, amount=1, reason="again", actor="staff:s", now=now)
    assert refused.value.code == "refunded"


def test_a_refund_larger_than_what_is_left_is_refused_and_writes_nothing(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given HK$40 of HK$50 refunded
    attempt = paid_attempt(make_order, now)
    do_request_refund(attempt, amount=4000, reason="part", actor="staff:s", now=now)
    entries = AuditEntry.objects.count()
    # when HK$10.01 more is asked for
    with pytest.raises(PaymentError) as refused:
        do_request_refund(attempt, amount=1001, reason="too much", actor="staff:s", now=now)
    # then it is refused with what is left, and nothing was written
    assert refused.value.code == "over_refund"
    assert "HK$10.00" in str(refused.value)
    assert Refund.objects.count() == 1
    assert AuditEntry.objects.count() == entries
    assert wallet(attempt) == 1000
    ledger_ok()


@pytest.mark.parametrize("amount", [0, -5])
def test_a_refund_of_nothing_is_refused(make_order: Any, now: datetime, amount: int) -> None:
    attempt = paid_attempt(make_order, now)
    with pytest.raises(PaymentError) as refused:
        do_request_refund(attempt, amount=amount, reason="x", actor="staff:s", now=now)
    assert refused.value.code == "amount_not_positive"
    assert not Refund.objects.exists()


def test_a_refund_of_spent_credit_is_refused_and_writes_nothing(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    from leb.ledger.actions import Leg, post_transfers, system_account
    from leb.ledger.models import Account, AccountKind

    # given a top-up whose credit was spent down to HK$5
    attempt = paid_attempt(make_order, now)
    purse = Account.objects.get(code=f"wallet:line:{attempt.order.line_id}")
    revenue = system_account(AccountKind.REVENUE, "HKD", "usage")
    post_transfers("usage:1", [Leg(purse, revenue, 4500, "usage")], now=now)
    # when HK$20 is to be refunded
    with pytest.raises(PaymentError) as refused:
        do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # then it is refused and no refund exists
    assert refused.value.code == "credit_used"
    assert not Refund.objects.exists()
    assert not order_of(attempt).refund_due
    ledger_ok()


def test_a_provider_failure_leaves_the_refund_due_and_a_retry_uses_the_same_key(
    make_order: Any, now: datetime, settings: Any, ledger_ok: Any
) -> None:
    # given a paid top-up and a gateway that does not answer
    attempt = paid_attempt(make_order, now)
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    # when HK$20 is refunded
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # then the refund failed and can be retried; the books say what is owed
    # and the order is due a refund at the provider
    assert refund.status == RefundStatus.FAILED and refund.is_retryable
    assert refund.failure_message
    assert order_of(attempt).refund_due
    assert wallet(attempt) == 3000
    assert AuditEntry.objects.filter(action="payment.refund.fail").count() == 1
    ledger_ok()
    # when the gateway is back and the refund is asked again, twice
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    retried = do_retry_refund(refund, actor="staff:s", now=now)
    # then it is confirmed under its first key, the books were not touched
    # again, and the gateway holds one refund for that key
    assert retried.status == RefundStatus.CONFIRMED
    assert retried.idempotency_key == refund.idempotency_key
    assert (retried.tries, order_of(attempt).refund_due) == (2, False)
    assert wallet(attempt) == 3000
    gateway = PaymentAttempt.objects.get(pk=attempt.pk).provider_data["gateway_refunds"]
    assert list(gateway) == [refund.idempotency_key]
    with pytest.raises(PaymentError) as refused:
        do_retry_refund(retried, actor="staff:s", now=now)
    assert refused.value.code == "not_retryable"
    ledger_ok()


def test_a_retry_after_a_lost_answer_gets_the_first_refund_not_a_second(
    make_order: Any, now: datetime, settings: Any
) -> None:
    # given a refund the gateway made, whose answer was lost on the way back
    attempt = paid_attempt(make_order, now)
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.FAILED)
    # when it is asked again
    retried = do_retry_refund(refund, actor="staff:s", now=now)
    # then the gateway answers with the refund it made, and made no other
    assert retried.provider_reference == refund.provider_reference
    gateway = PaymentAttempt.objects.get(pk=attempt.pk).provider_data["gateway_refunds"]
    assert sum(item["amount"] for item in gateway.values()) == 2000


def test_a_refund_confirmed_by_webhook_clears_refund_due_once(
    make_order: Any, now: datetime, settings: Any, transport: Any, ledger_ok: Any
) -> None:
    # given a gateway that confirms refunds by webhook
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    attempt = paid_attempt(make_order, now)
    # when HK$20 is refunded
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # then it waits for the gateway, and the order is due
    assert refund.status == RefundStatus.REQUESTED
    assert order_of(attempt).refund_due
    # when the webhook arrives
    assert deliver_pending_webhooks() == ["delivered"]
    # then the refund is confirmed and nothing is due any more
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED
    assert not order_of(attempt).refund_due
    assert transport.responses[-1].json()["outcome"] == "refund_confirmed"
    confirmations = AuditEntry.objects.filter(action="payment.refund.confirm").count()
    assert confirmations == 1
    # when the same event is delivered again, and another event says the same
    event = ProviderEvent.objects.get(type="refund.succeeded")
    again = do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id=event.event_id,
            type="refund.succeeded",
            payload_sha256="x",
            refunds=(RefundNotice(SUCCEEDED, refund_id=str(refund.public_id)),),
        ),
        now=now,
    )
    other = do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id="evt_other",
            type="refund.succeeded",
            payload_sha256="y",
            refunds=(RefundNotice(SUCCEEDED, reference=refund.provider_reference),),
        ),
        now=now,
    )
    # then neither has any effect
    assert (again, other) == ("duplicate", "duplicate")
    assert AuditEntry.objects.filter(action="payment.refund.confirm").count() == confirmations
    ledger_ok()


def test_a_refund_the_provider_fails_later_is_due_again(make_order: Any, now: datetime) -> None:
    # given a refund the sandbox confirmed
    attempt = paid_attempt(make_order, now)
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # when the provider reports days later that it failed
    outcome = do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id="evt_failed",
            type="refund.failed",
            payload_sha256="z",
            refunds=(RefundNotice("failed", refund_id=str(refund.public_id)),),
        ),
        now=now,
    )
    # then the refund is failed and retryable, and the order due again
    assert outcome == "refund_failed"
    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert order_of(attempt).refund_due


def test_an_event_about_an_unknown_refund_is_stored_and_changes_nothing(
    make_order: Any, now: datetime
) -> None:
    outcome = do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id="evt_unknown",
            type="refund.succeeded",
            payload_sha256="u",
            refunds=(RefundNotice(SUCCEEDED, reference="sbx_refund_nope", refund_id="not-a-uuid"),),
        ),
        now=now,
    )
    assert outcome == "unknown_refund"
    assert ProviderEvent.objects.get(event_id="evt_unknown").outcome == "unknown_refund"


# --- Stripe and PayPal ---------------------------------------------------------------


def test_stripe_partial_refund_pending_then_confirmed_by_its_webhooks(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    ledger_ok: Any,
) -> None:
    from .test_stripe import post, session_event, start, stripe_header

    # given a Stripe payment and a refund Stripe answers "pending"
    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    fake_stripe.refund_status = "pending"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    request = fake_stripe.requests[-1]
    assert request["form"]["amount"] == ["2000"]
    assert request["headers"]["Idempotency-Key"] == refund.idempotency_key
    assert (refund.status, refund.provider_reference) == (RefundStatus.REQUESTED, "re_123")
    # when charge.refunded arrives saying HK$20 has been refunded so far
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": "pi_123",
        "amount_refunded": 2000,
        "currency": "hkd",
        "refunded": False,
    }
    body = (
        '{"id": "evt_charge_refunded", "object": "event", "type": "charge.refunded", '
        f'"data": {{"object": {json.dumps(charge)}}}}}'
    )
    answer = post(client, body, stripe_header(body))
    # then the refund is confirmed and nothing is due
    assert answer.json()["outcome"] == "refund_confirmed"
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED
    assert not order_of(attempt).refund_due
    # when refund.updated says the same, then it has no further effect
    updated = {"id": "re_123", "object": "refund", "status": "succeeded", "amount": 2000}
    body = (
        '{"id": "evt_refund_updated", "object": "event", "type": "refund.updated", '
        f'"data": {{"object": {json.dumps(updated)}}}}}'
    )
    assert post(client, body, stripe_header(body)).json()["outcome"] == "duplicate"
    assert AuditEntry.objects.filter(action="payment.refund.confirm").count() == 1
    ledger_ok()


def charge_refunded(client: Client, event_id: str, total: int) -> str:
    """Stripe's charge.refunded in an API version that leaves the refund list
    out: only the total refunded so far. The outcome leb answers."""
    from .test_stripe import post, stripe_header

    charge: dict[str, Any] = {"id": "ch_1", "object": "charge", "payment_intent": "pi_123"}
    charge |= {"amount_refunded": total, "currency": "hkd", "refunded": False}
    body = json.dumps(
        {"id": event_id, "object": "event", "type": "charge.refunded", "data": {"object": charge}}
    )
    return str(post(client, body, stripe_header(body)).json()["outcome"])


def pending_stripe_refunds(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    amounts: list[int],
) -> list[Refund]:
    """A Stripe payment with one refund per amount, each answered "pending"
    and named re_0, re_1, …"""
    from .test_stripe import post, session_event, start, stripe_header

    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    fake_stripe.refund_status = "pending"
    refunds = []
    for number, amount in enumerate(amounts):
        fake_stripe.refund_id = f"re_{number}"
        refunds.append(
            do_request_refund(attempt, amount=amount, reason="x", actor="staff:s", now=now)
        )
    return refunds


def statuses(refunds: list[Refund]) -> list[str]:
    return [str(Refund.objects.get(pk=refund.pk).status) for refund in refunds]


def test_stripe_total_that_two_equal_refunds_could_make_confirms_neither(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    ledger_ok: Any,
) -> None:
    from .test_stripe import post, stripe_header

    # given two pending refunds of HK$20 on one Stripe payment
    first, second = pending_stripe_refunds(client, make_order, fake_stripe, now, [2000, 2000])
    # when charge.refunded says only that HK$20 has been refunded in all
    # then it cannot tell which: both keep waiting
    assert charge_refunded(client, "evt_total_1", 2000) == "refund_pending"
    assert statuses([first, second]) == [RefundStatus.REQUESTED] * 2
    # when Stripe's refund.updated names the second as done
    done = {"id": "re_1", "object": "refund", "status": "succeeded", "amount": 2000}
    body = json.dumps(
        {"id": "evt_re_1", "object": "event", "type": "refund.updated", "data": {"object": done}}
    )
    # then that one is confirmed, the first still waits
    assert post(client, body, stripe_header(body)).json()["outcome"] == "refund_confirmed"
    assert statuses([first, second]) == [RefundStatus.REQUESTED, RefundStatus.CONFIRMED]
    # when the total later covers both, then the one left is confirmed
    assert charge_refunded(client, "evt_total_2", 4000) == "refund_confirmed"
    assert statuses([first, second]) == [RefundStatus.CONFIRMED] * 2
    assert not order_of(first.attempt).refund_due
    # and an old total sent again confirms nothing more
    assert charge_refunded(client, "evt_total_3", 2000) == "duplicate"
    assert AuditEntry.objects.filter(action="payment.refund.confirm").count() == 2
    ledger_ok()


def test_stripe_total_that_only_one_refund_makes_confirms_that_one(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given pending refunds of HK$20 and HK$10
    larger, smaller = pending_stripe_refunds(client, make_order, fake_stripe, now, [2000, 1000])
    # when the total refunded is HK$10: only the newer refund makes it
    assert charge_refunded(client, "evt_total_1", 1000) == "refund_confirmed"
    # then it alone is confirmed, whatever the order they were asked in
    assert statuses([larger, smaller]) == [RefundStatus.REQUESTED, RefundStatus.CONFIRMED]
    # when a total matches no set of the waiting refunds (HK$25: something
    # refunded outside leb), then nothing is confirmed
    assert charge_refunded(client, "evt_total_2", 2500) == "refund_pending"
    assert statuses([larger, smaller]) == [RefundStatus.REQUESTED, RefundStatus.CONFIRMED]
    ledger_ok()


def test_paypal_refund_confirmed_by_payment_capture_refunded(
    client: Client,
    make_order: Any,
    fake_paypal: Any,  # noqa: F811
    now: datetime,
    ledger_ok: Any,
) -> None:
    from .test_paypal import capture_event
    from .test_paypal import post as paypal_post
    from .test_paypal import start as paypal_start

    # given a PayPal payment and a partial refund PayPal holds as PENDING
    attempt = paypal_start(client, make_order())
    paypal_post(client, capture_event(attempt))
    attempt.refresh_from_db()
    fake_paypal.refund_status = "PENDING"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    assert fake_paypal.requests[-1]["body"]["amount"] == {"currency_code": "HKD", "value": "20.00"}
    assert refund.status == RefundStatus.REQUESTED and order_of(attempt).refund_due
    # when PAYMENT.CAPTURE.REFUNDED arrives with the refund and leb's custom id
    resource = {
        "id": "1JU08902781691411",
        "status": "COMPLETED",
        "amount": {"currency_code": "HKD", "value": "20.00"},
        "custom_id": str(refund.public_id),
    }
    body = json.dumps(
        {"id": "WH-REFUNDED", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": resource}
    ).encode()
    answer = paypal_post(client, body)
    # then the refund is confirmed and nothing is due; a replay does nothing
    assert answer.json()["outcome"] == "refund_confirmed"
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED
    assert not order_of(attempt).refund_due
    assert paypal_post(client, body).json()["outcome"] == "duplicate"
    ledger_ok()


# --- Racing refunds -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
@pytest.mark.parametrize("round_", range(3))
def test_two_partial_refunds_racing_cannot_exceed_the_payment(
    make_order: Any, now: datetime, ledger_ok: Any, round_: int
) -> None:
    # given a HK$50 payment
    attempt = paid_attempt(make_order, now)

    def refund_30() -> Any:
        return do_request_refund(attempt, amount=3000, reason="race", actor="staff:s", now=now)

    # when two HK$30 refunds are asked for at the same moment
    results = race_all([refund_30, refund_30])
    # then one is made and the other refused: never more than was captured
    made = [r for r in results if isinstance(r, Refund)]
    refused = [r for r in results if isinstance(r, PaymentError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert refused[0].code == "over_refund"
    assert Refund.objects.filter(attempt=attempt).count() == 1
    assert wallet(attempt) == 2000
    ledger_ok()


def test_a_refund_through_a_provider_no_longer_enabled_is_refused_before_the_books(
    make_order: Any, now: datetime, settings: Any, ledger_ok: Any
) -> None:
    # given a payment through a provider that has since been switched off
    attempt = paid_attempt(make_order, now)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(provider="paypal")
    attempt.refresh_from_db()
    # when it is refunded
    with pytest.raises(PaymentError) as refused:
        do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # then nothing is owed in the books and no refund exists
    assert refused.value.code == "provider_unknown"
    assert not Refund.objects.exists()
    assert wallet(attempt) == 5000
    ledger_ok()


def test_a_refund_confirmed_while_its_call_timed_out_stays_confirmed(
    make_order: Any, now: datetime, monkeypatch: Any, ledger_ok: Any
) -> None:
    from leb.payments import actions
    from leb.payments.providers.base import PaymentProviderError
    from leb.payments.providers.sandbox import SandboxProvider

    # given a gateway that makes the refund and confirms it by webhook, while
    # its answer to the call itself is lost (the call times out)
    attempt = paid_attempt(make_order, now)
    make_refund = SandboxProvider.refund

    def made_then_answer_lost(self: Any, paid: Any, amount: int, **keys: Any) -> Any:
        made = make_refund(self, paid, amount, **keys)
        confirmed = Refund.objects.get(public_id=keys["refund_id"])
        actions._confirm_refund(confirmed, made.reference, actor="provider:sandbox", now=now)
        raise PaymentProviderError("the gateway did not answer in time")

    monkeypatch.setattr(SandboxProvider, "refund", made_then_answer_lost)

    # when HK$20 is refunded
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)

    # then the late error does not undo the confirmation: nothing is due,
    # and nothing invites staff to ask again
    assert refund.status == RefundStatus.CONFIRMED
    assert not order_of(attempt).refund_due
    assert not AuditEntry.objects.filter(action="payment.refund.fail").exists()
    ledger_ok()


def test_a_failed_refund_older_than_a_day_is_not_asked_again(
    make_order: Any, now: datetime, settings: Any
) -> None:
    from datetime import timedelta

    # given a refund that failed (perhaps made: the call timed out) a day ago
    attempt = paid_attempt(make_order, now)
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"

    # when it is asked again 24 hours later, past the provider's memory of its key
    with pytest.raises(PaymentError) as refused:
        do_retry_refund(refund, actor="staff:s", now=now + timedelta(hours=24))

    # then it is refused, saying why, and nothing was sent or written
    assert refused.value.code == "retry_window_passed"
    refund.refresh_from_db()
    assert (refund.status, refund.tries) == (RefundStatus.FAILED, 1)
    assert not AuditEntry.objects.filter(action="payment.refund.retry").exists()
    gateway = PaymentAttempt.objects.get(pk=attempt.pk).provider_data.get("gateway_refunds")
    assert not gateway


def test_a_top_up_refunded_in_part_is_not_reversed_in_the_books_alone(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    from leb.topups.actions import OrderError, do_refund_order

    # given a HK$50 top-up of which HK$20 went back through the provider
    attempt = paid_attempt(make_order, now)
    do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)

    # when staff reverse the whole top-up in the books (the order list's action)
    with pytest.raises(OrderError) as refused:
        do_refund_order(order_of(attempt), reason="by hand", actor="staff:s", now=now)

    # then it is refused: the rest must go back through the provider too
    assert refused.value.code == "partly_refunded"
    assert order_of(attempt).status == OrderStatus.FULFILLED
    assert wallet(attempt) == 3000
    # and the refund that completes the payment still reverses it whole
    last = do_request_refund(attempt, reason="x", actor="staff:s", now=now)
    assert last.amount == 3000 and last.status == RefundStatus.CONFIRMED
    assert order_of(attempt).status == OrderStatus.REFUNDED
    assert not order_of(attempt).refund_due
    ledger_ok()
