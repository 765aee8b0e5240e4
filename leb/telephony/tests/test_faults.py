"""The hotline's saved-card top-up when the card provider does not answer:
the caller is not told "nothing was charged" (the charge may have gone
through), and the top-up is made once when the answer comes."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from leb.autokeep.actions import do_run_autokeep, do_save_method
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers.base import SavedCard
from leb.testing import Answer, FaultServer
from leb.topups.models import OrderStatus, TopUpOrder

from .test_ivr import _menu

pytestmark = pytest.mark.django_db

UNCONFIRMED = (
    "We could not confirm the payment yet. If it goes through, your top-up is made and "
    "you get a message with the receipt. You are never charged twice."
)


def test_a_charge_without_an_answer_is_not_called_a_failure(
    call: Any,
    line: Any,
    owner: Any,
    hkd_plan: Any,
    fault_server: FaultServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    ledger_ok: Any,
) -> None:
    # given a saved Stripe card, and Stripe taking longer than the timeout
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = "sk_test_fault"
    settings.STRIPE_API_BASE = fault_server.url
    settings.PAYMENT_READ_TIMEOUT = 0.2
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    do_save_method(
        user=owner, provider="stripe", card=SavedCard("cus_1", "pm_1", "visa", "4242", 12, 2030)
    )
    fault_server.answer("/v1/payment_intents", Answer(delay=2))
    # when the caller confirms a top-up with it
    fake = call()
    _menu(fake, "en")
    fake.press("3")
    fake.press("1")
    reply = fake.press("1")
    # then they hear that it is not confirmed yet, never "nothing was charged"
    assert reply.says[0] == UNCONFIRMED
    order = TopUpOrder.objects.get(channel="ivr")
    assert order.status == OrderStatus.PENDING_PAYMENT
    # when Stripe answers the repeated request with the charge it made
    fault_server.answer(
        "/v1/payment_intents",
        Answer(
            200,
            {
                "id": "pi_1",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 5000,
                "amount_received": 5000,
                "currency": "hkd",
            },
        ),
    )
    do_run_autokeep()
    # then the line is topped up once
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert PaymentAttempt.objects.get(order=order).status == AttemptStatus.SUCCEEDED
    ledger_ok()
