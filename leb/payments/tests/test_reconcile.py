"""The reconciliation job: a payment the provider captured is fulfilled even
when its webhook is lost and the payer never comes back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from leb.common import clock
from leb.jobs.schedule import scheduled_jobs
from leb.payments.actions import reconcile_open_attempts
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db


def _paid_at_gateway(make_order: Any) -> tuple[TopUpOrder, PaymentAttempt]:
    order = make_order()
    Client().post(reverse("payments:start", args=[order.public_id]))
    attempt = PaymentAttempt.objects.get(order=order)
    sandbox.complete_at_gateway(attempt, SUCCEEDED)
    # The worker that took the webhook was killed: it is never delivered.
    DBTaskResult.objects.filter(task_path="leb.payments.tasks.deliver_sandbox_webhook").delete()
    return order, attempt


def test_a_captured_payment_whose_webhook_was_lost_is_fulfilled(
    make_order: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a payment the gateway captured, no webhook, no return page
    order, attempt = _paid_at_gateway(make_order)
    later = now + timedelta(seconds=settings.PAYMENTS_RECONCILE_AFTER_SECONDS)

    # when the reconciliation job runs
    with clock.frozen(later):
        result = reconcile_open_attempts(later)

    # then the order is fulfilled, once
    assert (result.checked, result.settled, result.errors) == (1, 1, 0)
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert attempt.status == AttemptStatus.SUCCEEDED
    ledger_ok()
    # and a second run has nothing left to do
    with clock.frozen(later):
        assert reconcile_open_attempts(later).checked == 0


def test_young_and_old_attempts_are_left_alone(make_order: Any, now: datetime) -> None:
    # given a captured payment
    order, _attempt = _paid_at_gateway(make_order)

    # when the job runs too soon, and after the window
    soon = reconcile_open_attempts(now + timedelta(seconds=5))
    late = reconcile_open_attempts(
        now + timedelta(hours=settings.PAYMENTS_RECONCILE_WINDOW_HOURS, seconds=1)
    )

    # then it checked nothing either time
    assert (soon.checked, late.checked) == (0, 0)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_an_attempt_still_open_at_the_gateway_stays_open(make_order: Any, now: datetime) -> None:
    # given a payer who opened the checkout and left
    order = make_order()
    Client().post(reverse("payments:start", args=[order.public_id]))

    # when the job runs
    later = now + timedelta(seconds=settings.PAYMENTS_RECONCILE_AFTER_SECONDS)
    result = reconcile_open_attempts(later)

    # then the provider said "pending": nothing changes
    assert (result.checked, result.settled) == (1, 0)
    assert PaymentAttempt.objects.get(order=order).status == AttemptStatus.PENDING


def test_the_job_is_scheduled() -> None:
    jobs = {job.name: job for job in scheduled_jobs()}
    assert jobs["payments-reconcile"].task_path == "leb.payments.tasks.reconcile_payments_task"
