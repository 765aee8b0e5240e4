"""The `refunds-reconcile` job: a refund the provider answered "pending"
whose webhook never came is asked about again, and confirmed or failed
through the webhook's own steps, once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.audit.models import AuditEntry
from leb.jobs.schedule import scheduled_jobs
from leb.payments.actions import do_record_event, do_request_refund, reconcile_pending_refunds
from leb.payments.models import PaymentAttempt, Refund, RefundStatus
from leb.payments.providers.base import SUCCEEDED, RefundNotice, WebhookEvent

from .helpers import pending_webhooks
from .test_paypal import fake_paypal  # noqa: F401  (fixture)
from .test_refunds import order_of, paid_attempt
from .test_stripe import fake_stripe  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def later(settings: Any, now: datetime) -> datetime:
    """When the job next looks: the refund has waited long enough."""
    return now + timedelta(seconds=settings.REFUNDS_RECONCILE_AFTER_SECONDS)


def confirmations() -> int:
    return AuditEntry.objects.filter(action="payment.refund.confirm").count()


def test_a_sandbox_refund_whose_webhook_was_lost_is_confirmed_once(
    make_order: Any, now: datetime, settings: Any, ledger_ok: Any
) -> None:
    # given a refund the sandbox answered "pending", its webhook never delivered
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    attempt = paid_attempt(make_order, now)
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    assert refund.status == RefundStatus.REQUESTED and len(pending_webhooks()) == 1
    # when the job runs before the refund has waited long enough
    early = reconcile_pending_refunds(now + timedelta(seconds=1))
    # then it is not asked about yet
    assert early.checked == 0
    # when the job runs later, twice
    first = reconcile_pending_refunds(later(settings, now))
    second = reconcile_pending_refunds(later(settings, now))
    # then the refund is confirmed once, the order no longer due a refund
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED
    assert (first.checked, first.confirmed, second.checked) == (1, 1, 0)
    assert not order_of(attempt).refund_due
    assert confirmations() == 1
    # when the lost webhook arrives after all, then it changes nothing
    outcome = do_record_event(
        WebhookEvent(
            provider="sandbox",
            event_id="evt_late",
            type="refund.succeeded",
            payload_sha256="x",
            refunds=(RefundNotice(SUCCEEDED, refund_id=str(refund.public_id)),),
        ),
        now=later(settings, now),
    )
    assert outcome == "duplicate"
    assert confirmations() == 1
    ledger_ok()


def test_a_refund_the_sandbox_gateway_reversed_is_failed_and_due(
    make_order: Any, now: datetime, settings: Any, ledger_ok: Any
) -> None:
    # given a pending refund the gateway has since reversed
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    attempt = paid_attempt(make_order, now)
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    stored = PaymentAttempt.objects.get(pk=attempt.pk)
    records = stored.provider_data["gateway_refunds"]
    records[refund.idempotency_key]["state"] = "failed"
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        provider_data={**stored.provider_data, "gateway_refunds": records}
    )
    # when the job runs
    result = reconcile_pending_refunds(later(settings, now))
    # then the refund failed, the order is still due, and it can be asked again
    refund.refresh_from_db()
    assert (result.failed, refund.status) == (1, RefundStatus.FAILED)
    assert "reports the refund" in refund.failure_message
    assert order_of(attempt).refund_due
    assert AuditEntry.objects.filter(action="payment.refund.fail").count() == 1
    ledger_ok()


def test_a_confirmed_or_failed_refund_is_not_asked_about(
    make_order: Any, now: datetime, settings: Any
) -> None:
    # given one refund confirmed at once and one that failed
    attempt = paid_attempt(make_order, now)
    do_request_refund(attempt, amount=1000, reason="x", actor="staff:s", now=now)
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    failed = do_request_refund(attempt, amount=1000, reason="x", actor="staff:s", now=now)
    assert failed.status == RefundStatus.FAILED
    # when the job runs, then neither is looked at
    assert reconcile_pending_refunds(later(settings, now)).checked == 0


def test_a_provider_that_cannot_be_asked_is_skipped_and_logged(
    make_order: Any, now: datetime, settings: Any, caplog: Any, monkeypatch: Any
) -> None:
    from leb.payments.providers.base import PaymentProvider
    from leb.payments.providers.sandbox import SandboxProvider

    # given a pending refund through a provider without refund look-ups
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    attempt = paid_attempt(make_order, now)
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    monkeypatch.setattr(SandboxProvider, "fetch_refund", PaymentProvider.fetch_refund)
    # when the job runs
    result = reconcile_pending_refunds(later(settings, now))
    # then it is skipped, said in the log, and still waits
    assert (result.checked, result.skipped, result.errors) == (1, 1, 0)
    assert "cannot be asked" in caplog.text
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REQUESTED


def test_stripe_refund_still_pending_then_succeeded(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    settings: Any,
    ledger_ok: Any,
) -> None:
    from .test_stripe import post, session_event, start, stripe_header

    # given a Stripe refund answered "pending" whose webhook never came
    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    fake_stripe.refund_status = "pending"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # when the job runs while Stripe still says pending
    pending = reconcile_pending_refunds(later(settings, now))
    # then Stripe was asked for that refund and nothing changed
    asked = fake_stripe.requests[-1]
    assert (asked["method"], asked["url"].split("/v1/")[-1]) == ("get", "refunds/re_123")
    assert pending.pending == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REQUESTED
    # when Stripe has completed it and the job runs again
    fake_stripe.refund_status = "succeeded"
    done = reconcile_pending_refunds(later(settings, now))
    # then it is confirmed, once
    refund.refresh_from_db()
    assert (done.confirmed, refund.status) == (1, RefundStatus.CONFIRMED)
    assert not order_of(attempt).refund_due
    assert confirmations() == 1
    ledger_ok()


def test_stripe_refund_failed_at_stripe(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    settings: Any,
) -> None:
    from .test_stripe import post, session_event, start, stripe_header

    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    fake_stripe.refund_status = "pending"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # when Stripe has since failed the refund
    fake_stripe.refund_status = "failed"
    reconcile_pending_refunds(later(settings, now))
    # then it is failed and due
    refund.refresh_from_db()
    assert refund.status == RefundStatus.FAILED
    assert order_of(attempt).refund_due


def test_stripe_unreachable_is_an_error_and_the_refund_waits(
    client: Client,
    make_order: Any,
    fake_stripe: Any,  # noqa: F811
    now: datetime,
    settings: Any,
) -> None:
    from .test_stripe import post, session_event, start, stripe_header

    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    fake_stripe.refund_status = "pending"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # when Stripe is down at the job's run
    fake_stripe.fail = True
    result = reconcile_pending_refunds(later(settings, now))
    # then it counts an error and the refund still waits
    assert result.errors == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REQUESTED


def test_paypal_refund_completed_is_confirmed(
    client: Client,
    make_order: Any,
    fake_paypal: Any,  # noqa: F811
    now: datetime,
    settings: Any,
    ledger_ok: Any,
) -> None:
    from .test_paypal import capture_event
    from .test_paypal import post as paypal_post
    from .test_paypal import start as paypal_start

    # given a PayPal refund held as PENDING whose webhook never came
    attempt = paypal_start(client, make_order())
    paypal_post(client, capture_event(attempt))
    attempt.refresh_from_db()
    fake_paypal.refund_status = "PENDING"
    refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    # when the job runs while PayPal still says PENDING, then nothing changes
    assert reconcile_pending_refunds(later(settings, now)).pending == 1
    assert fake_paypal.requests[-1]["method"] == "GET"
    assert fake_paypal.requests[-1]["path"] == f"/v2/payments/refunds/{refund.provider_reference}"
    # when PayPal has completed it, then the job confirms it once
    fake_paypal.refund_status = "COMPLETED"
    assert reconcile_pending_refunds(later(settings, now)).confirmed == 1
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED
    assert not order_of(attempt).refund_due
    assert reconcile_pending_refunds(later(settings, now)).checked == 0
    assert confirmations() == 1
    ledger_ok()


def test_the_job_is_scheduled(settings: Any) -> None:
    jobs = {job.name: job for job in scheduled_jobs()}
    job = jobs["refunds-reconcile"]
    assert job.task_path == "leb.payments.tasks.reconcile_refunds_task"
    assert job.interval_seconds == settings.REFUNDS_RECONCILE_INTERVAL


def test_the_task_runs_the_job(make_order: Any, now: datetime, settings: Any) -> None:
    from leb.common import clock
    from leb.payments.tasks import reconcile_refunds_task

    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    attempt = paid_attempt(make_order, now)
    do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    with clock.frozen(later(settings, now)):
        summary = reconcile_refunds_task.call()
    assert summary["confirmed"] == 1
    assert Refund.objects.get().status == RefundStatus.CONFIRMED


def _refund_never_sent(make_order: Any, now: datetime, monkeypatch: Any) -> Any:
    """A refund written, and the process stopped before the provider call."""
    from leb.payments import actions

    attempt = paid_attempt(make_order, now)
    with monkeypatch.context() as patch:
        patch.setattr(actions, "_send_refund", lambda refund, **_kwargs: refund)
        refund = do_request_refund(attempt, amount=2000, reason="x", actor="staff:s", now=now)
    assert refund.status == RefundStatus.REQUESTED and not refund.provider_reference
    return attempt, refund


def test_a_refund_never_sent_is_sent_under_its_key_by_the_job(
    make_order: Any, now: datetime, settings: Any, monkeypatch: Any, ledger_ok: Any
) -> None:
    # given a refund the process never sent to the gateway
    attempt, refund = _refund_never_sent(make_order, now, monkeypatch)
    # when the job runs, twice
    first = reconcile_pending_refunds(later(settings, now))
    second = reconcile_pending_refunds(later(settings, now))
    # then it was sent once under its own key and confirmed
    refund.refresh_from_db()
    assert refund.status == RefundStatus.CONFIRMED and refund.provider_reference
    assert (first.confirmed, second.checked) == (1, 0)
    gateway = PaymentAttempt.objects.get(pk=attempt.pk).provider_data["gateway_refunds"]
    assert list(gateway) == [refund.idempotency_key]
    assert not order_of(attempt).refund_due
    ledger_ok()


def test_a_refund_never_answered_for_a_day_is_failed_for_finance(
    make_order: Any, now: datetime, monkeypatch: Any
) -> None:
    # given a refund never sent, found a day later
    attempt, refund = _refund_never_sent(make_order, now, monkeypatch)
    # when the job runs then
    result = reconcile_pending_refunds(now + timedelta(hours=24))
    # then it is not sent (the provider may have forgotten its key): it is
    # failed, the order still due a refund, for finance to check
    refund.refresh_from_db()
    assert (result.failed, refund.status) == (1, RefundStatus.FAILED)
    assert "never answered" in refund.failure_message
    assert order_of(attempt).refund_due
    assert not PaymentAttempt.objects.get(pk=attempt.pk).provider_data.get("gateway_refunds")


def test_every_waiting_refund_is_looked_at_whatever_the_batch_size(
    make_order: Any, now: datetime, settings: Any
) -> None:
    # given three refunds the sandbox keeps pending (their webhooks lost)
    settings.PAYMENTS_SANDBOX_REFUNDS = "webhook"
    for n in range(3):
        do_request_refund(
            paid_attempt(make_order, now),
            amount=1000,
            reason="x",
            actor="staff:s",
            now=now + timedelta(seconds=n),
        )
    # when the job runs once, reading one refund at a time
    result = reconcile_pending_refunds(later(settings, now) + timedelta(seconds=5), batch_size=1)
    # then all three were asked about and confirmed
    assert (result.checked, result.confirmed) == (3, 3)
    assert not Refund.objects.exclude(status=RefundStatus.CONFIRMED).exists()
