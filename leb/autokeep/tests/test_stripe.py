"""Saving a card with Stripe Checkout (setup mode) and charging it off-session,
through the official SDK against a fake HTTP client that records the real
requests and answers with canned Stripe JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe
from django.urls import reverse

from leb.autokeep.actions import do_charge_saved_method, do_run_autokeep
from leb.autokeep.models import AutoKeepRun, MethodSetup, SavedPaymentMethod, SetupStatus
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.payments.providers import stripe as stripe_provider
from leb.topups.models import OrderStatus

from .helpers import notified

pytestmark = pytest.mark.django_db

PAYMENT_METHOD = {
    "id": "pm_card_visa",
    "object": "payment_method",
    "type": "card",
    "customer": "cus_123",
    "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031},
}


def card_error(code: str, decline_code: str = "") -> tuple[str, int, dict[str, str]]:
    error: dict[str, Any] = {
        "type": "card_error",
        "code": code,
        "message": "Your card was declined.",
        "payment_intent": {
            "id": "pi_failed",
            "object": "payment_intent",
            "status": "requires_payment_method",
        },
    }
    if decline_code:
        error["decline_code"] = decline_code
    return json.dumps({"error": error}), 402, {}


class FakeStripeHTTP(stripe.HTTPClient):
    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.session_status = "complete"
        self.charge_answer: tuple[str, int, dict[str, str]] | None = None

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any
    ) -> tuple[str, int, dict[str, str]]:
        form = parse_qs(post_data or "")
        self.requests.append(
            {"method": method, "url": url, "headers": dict(headers or {}), "form": form}
        )
        if url.endswith("/v1/customers") and method == "post":
            return json.dumps({"id": "cus_123", "object": "customer"}), 200, {}
        if url.endswith("/v1/checkout/sessions") and method == "post":
            body: dict[str, Any] = {
                "id": "cs_setup_1",
                "object": "checkout.session",
                "mode": "setup",
                "url": "https://checkout.stripe.com/c/pay/cs_setup_1",
                "status": "open",
                "customer": "cus_123",
            }
            return json.dumps(body), 200, {}
        if "/v1/checkout/sessions/cs_setup_1" in url:
            body = {
                "id": "cs_setup_1",
                "object": "checkout.session",
                "mode": "setup",
                "status": self.session_status,
                "customer": "cus_123",
                "setup_intent": {
                    "id": "seti_1",
                    "object": "setup_intent",
                    "status": "succeeded",
                    "payment_method": PAYMENT_METHOD,
                },
            }
            return json.dumps(body), 200, {}
        if url.endswith("/v1/payment_intents") and method == "post":
            if self.charge_answer is not None:
                return self.charge_answer
            body = {
                "id": "pi_123",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": int(form["amount"][0]),
                "amount_received": int(form["amount"][0]),
                "currency": form["currency"][0],
            }
            return json.dumps(body), 200, {}
        if "/v1/payment_methods/" in url and url.endswith("/detach"):
            return json.dumps(PAYMENT_METHOD), 200, {}
        return (
            json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}}),
            404,
            {},
        )

    def close(self) -> None:
        pass


@pytest.fixture
def fake_stripe(settings: Any) -> Iterator[FakeStripeHTTP]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    fake = FakeStripeHTTP()
    previous, stripe_provider.http_client = stripe_provider.http_client, fake
    try:
        yield fake
    finally:
        stripe_provider.http_client = previous


def save_stripe_card(client: Any, fake: FakeStripeHTTP) -> SavedPaymentMethod:
    response = client.post(reverse("autokeep:add_method"), {"provider": "stripe"})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_setup_1"
    setup = MethodSetup.objects.get()
    response = client.get(reverse("autokeep:setup_return", args=[setup.public_id]))
    assert response.status_code == 302
    return SavedPaymentMethod.objects.get()


def test_setup_mode_checkout_saves_the_payment_method(
    owner_client: Any, fake_stripe: FakeStripeHTTP
) -> None:
    # when the subscriber saves a card with Stripe
    method = save_stripe_card(owner_client, fake_stripe)
    # then a customer and a setup-mode Checkout Session were created
    session_request = next(
        r for r in fake_stripe.requests if r["url"].endswith("/v1/checkout/sessions")
    )
    assert session_request["form"]["mode"] == ["setup"]
    assert session_request["form"]["customer"] == ["cus_123"]
    assert session_request["headers"]["Idempotency-Key"].startswith("setup:")
    # and the card facts come from the SetupIntent's PaymentMethod
    assert (method.provider, method.customer_reference, method.method_reference) == (
        "stripe",
        "cus_123",
        "pm_card_visa",
    )
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "visa",
        "4242",
        8,
        2031,
    )
    assert MethodSetup.objects.get().status == SetupStatus.COMPLETED


def test_unfinished_setup_saves_nothing_yet(owner_client: Any, fake_stripe: FakeStripeHTTP) -> None:
    fake_stripe.session_status = "open"
    owner_client.post(reverse("autokeep:add_method"), {"provider": "stripe"})
    setup = MethodSetup.objects.get()
    response = owner_client.get(reverse("autokeep:setup_return", args=[setup.public_id]))
    assert response.status_code == 200
    assert not SavedPaymentMethod.objects.exists()


def test_off_session_charge_sends_off_session_confirm_and_idempotency_key(
    owner_client: Any,
    fake_stripe: FakeStripeHTTP,
    line: Any,
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a saved Stripe card
    save_stripe_card(owner_client, fake_stripe)
    # when the line is topped up with it
    order = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="ivr", idempotency_key="call-9", now=now
    )
    # then Stripe was asked for an off-session, confirmed PaymentIntent
    charge = next(r for r in fake_stripe.requests if r["url"].endswith("/v1/payment_intents"))
    form = charge["form"]
    assert form["off_session"] == ["true"]
    assert form["confirm"] == ["true"]
    assert (form["amount"], form["currency"]) == (["5000"], ["hkd"])
    assert (form["customer"], form["payment_method"]) == (["cus_123"], ["pm_card_visa"])
    attempt = PaymentAttempt.objects.get(order=order)
    assert charge["headers"]["Idempotency-Key"] == f"offsession:{attempt.public_id}"
    # and the order went through the one settle/fulfil path
    assert order.status == OrderStatus.FULFILLED
    assert attempt.provider_reference == "pi_123"
    assert attempt.provider_data["payment_intent"] == "pi_123"
    ledger_ok()


@pytest.mark.parametrize(
    ("code", "decline_code", "expected"),
    [
        ("card_declined", "generic_decline", "card_declined"),
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("authentication_required", "authentication_required", "authentication_required"),
    ],
)
def test_card_errors_fail_the_order(
    owner_client: Any,
    fake_stripe: FakeStripeHTTP,
    line: Any,
    hkd_plan: Any,
    now: datetime,
    code: str,
    decline_code: str,
    expected: str,
    ledger_ok: Any,
) -> None:
    save_stripe_card(owner_client, fake_stripe)
    fake_stripe.charge_answer = card_error(code, decline_code)
    order = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="auto", idempotency_key="k", now=now
    )
    assert order.status == OrderStatus.FAILED
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, expected)
    ledger_ok()


def test_declined_stripe_card_notifies_the_owner_from_the_job(
    owner_client: Any,
    fake_stripe: FakeStripeHTTP,
    line: Any,
    hkd_plan: Any,
    owner: Any,
    now: datetime,
) -> None:
    from datetime import timedelta

    from leb.autokeep.actions import do_set_rule

    method = save_stripe_card(owner_client, fake_stripe)
    do_set_rule(
        user=owner,
        line=line,
        mode="threshold",
        method=method,
        plan=hkd_plan,
        days_before=7,
        now=now,
    )
    fake_stripe.charge_answer = card_error("card_declined", "generic_decline")
    do_run_autokeep(line.valid_until - timedelta(days=1))
    assert AutoKeepRun.objects.get().error_code == "card_declined"
    assert len(notified("autokeep_failed")) == 1
