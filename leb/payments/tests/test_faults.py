# ruff: noqa: RUF001
"""Payment providers having a bad day, over real sockets: Stripe's SDK and the
PayPal client talk HTTP to a local server (leb.testing.FaultServer) that
stalls past the configured timeout, answers 503 or garbage, drops the
connection, or never accepts it. At checkout, at confirmation (the return
page), at refund and for off-session charges, the payer sees a clear answer
(try again later, or still pending) and nothing is lost or paid twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.test import Client
from django.urls import reverse

from leb.autokeep.actions import do_charge_saved_method, do_run_autokeep, do_save_method
from leb.ledger.queries import balance_by_code
from leb.lines.models import LineEvent
from leb.payments.actions import PaymentError, do_refund_attempt
from leb.payments.models import AttemptStatus, PaymentAttempt, Refund
from leb.payments.providers import paypal
from leb.payments.providers import stripe as stripe_provider
from leb.payments.providers.base import SavedCard
from leb.testing import Answer, FaultServer, refused_url, unanswered_port
from leb.topups.models import OrderStatus, TopUpOrder

pytestmark = pytest.mark.django_db

CONNECT_TIMEOUT = 0.2
READ_TIMEOUT = 0.25
STALL = 2.0  # longer than any timeout; released when the test ends
UNAVAILABLE = "The payment service is not available right now. Try again later."
SESSION = "cs_fault_1"
CHECKOUT_URL = "https://checkout.stripe.com/c/pay/cs_fault_1"

# Each fault, and what it does to a call.
FAULTS = ["connect_timeout", "refused", "read_timeout", "dropped", "503", "garbage", "empty"]


def broken(fault: str) -> Answer:
    """The server's answer for a fault that the server itself plays."""
    return {
        "read_timeout": Answer(delay=STALL),
        "dropped": Answer(drop=True),
        "503": Answer(503, {"error": {"message": "down", "type": "api_error"}}),
        "garbage": Answer(
            200, b"<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"}
        ),
        "empty": Answer(200, {}),
    }[fault]


class Provider:
    """Where the provider under test lives, and how to break and mend it."""

    def __init__(self, server: FaultServer, settings: Any, setting: str, stack: ExitStack) -> None:
        self.server = server
        self.settings = settings
        self.setting = setting
        self.stack = stack

    def break_(self, fault: str, prefix: str) -> None:
        if fault == "connect_timeout":
            port = self.stack.enter_context(unanswered_port())
            setattr(self.settings, self.setting, f"http://127.0.0.1:{port}")
        elif fault == "refused":
            setattr(self.settings, self.setting, refused_url())
        else:
            self.server.answer(prefix, broken(fault))

    def mend(self, prefix: str, *answers: Answer) -> None:
        setattr(self.settings, self.setting, self.server.url)
        self.server.answer(prefix, *answers)


@pytest.fixture
def timeouts(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PAYMENT_CONNECT_TIMEOUT = CONNECT_TIMEOUT
    settings.PAYMENT_READ_TIMEOUT = READ_TIMEOUT
    # The SDK's own retries keep their count but not their half-second waits.
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.02)


@pytest.fixture
def stripe_api(fault_server: FaultServer, settings: Any, timeouts: None) -> Iterator[Provider]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = "sk_test_fault"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_fault"
    settings.STRIPE_API_BASE = fault_server.url
    assert stripe_provider.http_client is None
    with ExitStack() as stack:
        yield Provider(fault_server, settings, "STRIPE_API_BASE", stack)


@pytest.fixture
def paypal_api(fault_server: FaultServer, settings: Any, timeouts: None) -> Iterator[Provider]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "paypal"]
    settings.PAYPAL_CLIENT_ID = "client"
    settings.PAYPAL_CLIENT_SECRET = "secret"
    settings.PAYPAL_API_BASE = fault_server.url
    paypal.reset_token_cache()
    fault_server.answer(
        "/v1/oauth2/token", Answer(200, {"access_token": "A21-fault", "expires_in": 32400})
    )
    with ExitStack() as stack:
        yield Provider(fault_server, settings, "PAYPAL_API_BASE", stack)
    paypal.reset_token_cache()


def session(status: str = "open", paid: bool = False, **extra: Any) -> Answer:
    body = {
        "id": SESSION,
        "object": "checkout.session",
        "url": CHECKOUT_URL,
        "status": "complete" if paid else status,
        "payment_status": "paid" if paid else "unpaid",
        "amount_total": 5000,
        "currency": "hkd",
        "payment_intent": "pi_fault" if paid else None,
        **extra,
    }
    return Answer(200, body)


def start(client: Client, order: Any, provider: str) -> Any:
    return client.post(reverse("payments:start", args=[order.public_id]) + f"?provider={provider}")


def keys(server: FaultServer, prefix: str, header: str = "Idempotency-Key") -> set[str]:
    return {r.headers.get(header, "") for r in server.requests_to(prefix)}


def paid_once(order: TopUpOrder, ledger_ok: Callable[[], None]) -> None:
    """The order is fulfilled, the line credited once, the books balanced."""
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    assert balance_by_code(f"wallet:line:{order.line_id}") == 5000
    assert LineEvent.objects.filter(line=order.line, kind="topped_up").count() == 1
    ledger_ok()


def nothing_paid(order: TopUpOrder, ledger_ok: Callable[[], None]) -> None:
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    assert not LineEvent.objects.filter(line=order.line, kind="topped_up").exists()
    ledger_ok()


# --- Checkout creation ------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
def test_stripe_checkout_fault_says_try_again_and_charges_nothing(
    client: Client, make_order: Any, stripe_api: Provider, ledger_ok: Any, fault: str
) -> None:
    # given Stripe failing in this way
    stripe_api.break_(fault, "/v1/checkout/sessions")
    order = make_order()
    # when the payer starts a card payment
    response = start(client, order, "stripe")
    # then they are told to try again later, and nothing is charged
    assert response.status_code == 400
    assert UNAVAILABLE in response.content.decode()
    (attempt,) = PaymentAttempt.objects.filter(order=order)
    assert (attempt.status, attempt.failure_code) == ("failed", "provider_unavailable")
    nothing_paid(order, ledger_ok)
    # and every try the SDK made carried the same idempotency key
    assert keys(stripe_api.server, "/v1/checkout/sessions") <= {f"checkout:{attempt.public_id}"}
    # when Stripe recovers and the payer tries again
    stripe_api.mend("/v1/checkout/sessions", session())
    response = start(client, order, "stripe")
    # then the checkout opens, on a new attempt
    assert response.status_code == 302
    assert response["Location"] == CHECKOUT_URL
    assert PaymentAttempt.objects.filter(order=order, status="pending").count() == 1


def test_a_slow_answer_within_the_timeout_is_waited_for(
    client: Client, make_order: Any, stripe_api: Provider
) -> None:
    stripe_api.mend("/v1/checkout/sessions", Answer(**{**session().__dict__, "delay": 0.1}))
    response = start(client, make_order(), "stripe")
    assert response.status_code == 302
    assert len(stripe_api.server.requests) == 1


def test_checkout_fault_in_chinese(
    client: Client, make_order: Any, stripe_api: Provider, settings: Any
) -> None:
    stripe_api.break_("503", "/v1/checkout/sessions")
    order = make_order()
    for language, text in [
        ("zh-hans", "支付服务暂时不可用，请稍后再试。"),
        ("zh-hant", "付款服務暫時未能使用，請稍後再試。"),
    ]:
        response = client.post(
            reverse("payments:start", args=[order.public_id]) + "?provider=stripe",
            HTTP_ACCEPT_LANGUAGE=language,
        )
        assert response.status_code == 400
        assert text in response.content.decode()


def test_api_checkout_fault_is_a_problem_document(
    make_order: Any, stripe_api: Provider, ledger_ok: Any
) -> None:
    stripe_api.break_("read_timeout", "/v1/checkout/sessions")
    order = make_order()
    response = Client().post(
        f"/api/v1/orders/{order.public_id}/payments",
        data=json.dumps({"provider": "stripe"}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "provider_unavailable"
    assert body["detail"] == "支付服务暂时不可用，请稍后再试。"
    nothing_paid(order, ledger_ok)


@pytest.mark.parametrize("fault", ["connect_timeout", "read_timeout", "garbage"])
def test_paypal_checkout_fault_says_try_again_and_charges_nothing(
    client: Client, make_order: Any, paypal_api: Provider, ledger_ok: Any, fault: str
) -> None:
    paypal_api.break_(fault, "/v2/checkout/orders")
    order = make_order()
    response = start(client, order, "paypal")
    assert response.status_code == 400
    assert UNAVAILABLE in response.content.decode()
    (attempt,) = PaymentAttempt.objects.filter(order=order)
    assert (attempt.status, attempt.failure_code) == ("failed", "provider_unavailable")
    nothing_paid(order, ledger_ok)
    # PayPal's idempotency key is the attempt: a repeat returns the same order
    assert keys(paypal_api.server, "/v2/checkout/orders", "PayPal-Request-Id") <= {
        str(attempt.public_id)
    }


# --- Confirmation: the return page and the status poll -------------------------


@pytest.mark.parametrize("fault", ["refused", "read_timeout", "503", "empty"])
def test_stripe_confirmation_fault_keeps_the_payment_pending_then_fulfils_once(
    client: Client, make_order: Any, stripe_api: Provider, ledger_ok: Any, fault: str
) -> None:
    # given a payer sent to Stripe's checkout
    stripe_api.mend("/v1/checkout/sessions", session())
    order = make_order()
    assert start(client, order, "stripe").status_code == 302
    attempt = PaymentAttempt.objects.get(order=order)
    # when they come back while Stripe cannot say how it went
    stripe_api.break_(fault, f"/v1/checkout/sessions/{SESSION}")
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    poll = client.get(reverse("payments:status", args=[attempt.public_id]))
    # then the page says it is still pending and reloads itself
    assert page.status_code == 200
    assert 'data-state="pending"' in page.content.decode()
    assert page["Refresh"] == "5"
    assert poll.json()["done"] is False
    nothing_paid(order, ledger_ok)
    # when Stripe answers again, the page shows the top-up, made once
    stripe_api.mend(f"/v1/checkout/sessions/{SESSION}", session(paid=True))
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    assert 'data-state="success"' in page.content.decode()
    assert client.get(reverse("payments:return", args=[attempt.public_id])).status_code == 200
    paid_once(order, ledger_ok)


def stripe_webhook(client: Client, attempt: PaymentAttempt, event_id: str) -> Any:
    obj = {
        "id": SESSION,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 5000,
        "currency": "hkd",
        "payment_intent": "pi_fault",
        "metadata": {"attempt": str(attempt.public_id)},
    }
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "data": {"object": obj},
        }
    )
    t = int(time.time())
    signature = hmac.new(b"whsec_fault", f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        headers={"Stripe-Signature": f"t={t},v1={signature}"},
    )


def test_webhook_settles_what_the_return_page_could_not_confirm(
    client: Client, make_order: Any, stripe_api: Provider, ledger_ok: Any
) -> None:
    # given a return page that found Stripe down: pending
    stripe_api.mend("/v1/checkout/sessions", session())
    order = make_order()
    start(client, order, "stripe")
    attempt = PaymentAttempt.objects.get(order=order)
    stripe_api.break_("503", f"/v1/checkout/sessions/{SESSION}")
    assert (
        'data-state="pending"'
        in client.get(reverse("payments:return", args=[attempt.public_id])).content.decode()
    )
    # when Stripe's webhook arrives, and again under the same id
    assert stripe_webhook(Client(), attempt, "evt_1").json()["outcome"] == "fulfilled"
    assert stripe_webhook(Client(), attempt, "evt_1").json()["outcome"] == "duplicate"
    # then the page, still unable to ask Stripe, shows the top-up
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    assert 'data-state="success"' in page.content.decode()
    paid_once(order, ledger_ok)


@pytest.mark.parametrize("fault", ["read_timeout", "503"])
def test_paypal_capture_fault_keeps_the_payment_pending_then_captures_once(
    client: Client, make_order: Any, paypal_api: Provider, ledger_ok: Any, fault: str
) -> None:
    # given a payer who approved at PayPal
    order = make_order()
    created = {
        "id": "PP-1",
        "status": "PAYER_ACTION_REQUIRED",
        "links": [{"rel": "payer-action", "href": "https://www.paypal.com/pay?token=PP-1"}],
    }
    paypal_api.server.answer("/v2/checkout/orders", Answer(200, created))
    assert start(client, order, "paypal").status_code == 302
    attempt = PaymentAttempt.objects.get(order=order)
    paypal_api.server.answer(
        "/v2/checkout/orders/PP-1", Answer(200, {"id": "PP-1", "status": "APPROVED"})
    )
    # when the capture fails in this way
    paypal_api.break_(fault, "/v2/checkout/orders/PP-1/capture")
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    # then the payment is still pending: nothing paid, nothing failed
    assert 'data-state="pending"' in page.content.decode()
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.PENDING
    nothing_paid(order, ledger_ok)
    # when PayPal recovers, the capture goes through once
    completed = {
        "id": "PP-1",
        "status": "COMPLETED",
        "purchase_units": [
            {
                "payments": {
                    "captures": [
                        {
                            "id": "CAP-1",
                            "status": "COMPLETED",
                            "amount": {"currency_code": "HKD", "value": "50.00"},
                        }
                    ]
                }
            }
        ],
    }
    paypal_api.mend("/v2/checkout/orders/PP-1/capture", Answer(201, completed))
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    assert 'data-state="success"' in page.content.decode()
    paid_once(order, ledger_ok)
    # and every capture carried the same PayPal-Request-Id
    assert keys(paypal_api.server, "/v2/checkout/orders/PP-1/capture", "PayPal-Request-Id") == {
        f"{attempt.public_id}:capture"
    }


# --- Refunds ------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["connect_timeout", "503", "empty"])
def test_stripe_refund_fault_keeps_it_due_and_a_retry_refunds_once(
    client: Client, make_order: Any, stripe_api: Provider, ledger_ok: Any, fault: str
) -> None:
    # given a fulfilled Stripe payment
    stripe_api.mend("/v1/checkout/sessions", session(paid=True))
    order = make_order()
    start(client, order, "stripe")
    client.get(reverse("payments:return", args=[PaymentAttempt.objects.get(order=order).public_id]))
    paid_once(order, ledger_ok)
    attempt = PaymentAttempt.objects.get(order=order)
    # when the refund reaches a failing Stripe
    stripe_api.break_(fault, "/v1/refunds")
    with pytest.raises(PaymentError) as refused:
        do_refund_attempt(attempt, reason="asked", actor="staff:finance")
    # then staff are told the provider part failed; the books are reversed and
    # the order stays due for a refund at the provider
    assert refused.value.code == "provider_refund_failed"
    order.refresh_from_db()
    assert (order.status, order.refund_due) == (OrderStatus.REFUNDED, True)
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == AttemptStatus.SUCCEEDED
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    ledger_ok()
    # when it is tried again with Stripe back
    stripe_api.mend(
        "/v1/refunds", Answer(200, {"id": "re_1", "object": "refund", "status": "succeeded"})
    )
    refunded = do_refund_attempt(
        PaymentAttempt.objects.get(pk=attempt.pk), reason="asked", actor="staff:finance"
    )
    # then the money goes back once: one key for every try, nothing due any more
    assert refunded.status == AttemptStatus.REFUNDED
    order.refresh_from_db()
    assert (order.status, order.refund_due) == (OrderStatus.REFUNDED, False)
    assert keys(stripe_api.server, "/v1/refunds") == {
        Refund.objects.get(attempt=attempt).idempotency_key
    }
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    ledger_ok()


# --- Off-session charges (auto-keep, the hotline) -----------------------------------


@pytest.fixture
def saved_card(owner: Any, stripe_api: Provider) -> Any:
    return do_save_method(
        user=owner,
        provider="stripe",
        card=SavedCard("cus_fault", "pm_fault", "visa", "4242", 12, 2030),
    )


def intent(status: str = "succeeded") -> Answer:
    return Answer(
        200,
        {
            "id": "pi_off_1",
            "object": "payment_intent",
            "status": status,
            "amount": 5000,
            "amount_received": 5000,
            "currency": "hkd",
        },
    )


@pytest.mark.parametrize("fault", ["read_timeout", "dropped", "garbage"])
def test_off_session_charge_without_an_answer_is_asked_again_never_charged_twice(
    make_line: Any,
    owner: Any,
    hkd_plan: Any,
    saved_card: Any,
    stripe_api: Provider,
    ledger_ok: Any,
    fault: str,
) -> None:
    # given Stripe that takes the charge but whose answer is lost
    line = make_line(owner=owner)
    stripe_api.break_(fault, "/v1/payment_intents")
    # when the line is topped up with the saved card
    order = do_charge_saved_method(line=line, plan=hkd_plan, channel="auto", idempotency_key="k1")
    # then the order waits: it is neither paid nor failed, since the card may
    # have been charged
    attempt = PaymentAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.provider_data["unconfirmed"] is True
    nothing_paid(order, ledger_ok)
    # when the job runs with Stripe back, it asks again under the same key
    stripe_api.mend("/v1/payment_intents", intent())
    do_run_autokeep()
    # then Stripe's answer (the first charge) tops the line up, once
    paid_once(order, ledger_ok)
    assert keys(stripe_api.server, "/v1/payment_intents") == {f"offsession:{attempt.public_id}"}
    assert "unconfirmed" not in PaymentAttempt.objects.get(pk=attempt.pk).provider_data
    # and a later run asks nothing more
    before = len(stripe_api.server.requests)
    do_run_autokeep()
    assert len(stripe_api.server.requests) == before


def test_the_auto_keep_job_reports_an_unconfirmed_charge_and_starts_no_other(
    make_line: Any, owner: Any, hkd_plan: Any, saved_card: Any, stripe_api: Provider, now: Any
) -> None:
    from leb.autokeep.actions import do_set_rule
    from leb.autokeep.models import AutoKeepRun
    from leb.common import clock

    line = make_line(owner=owner)
    do_set_rule(
        user=owner, line=line, mode="threshold", method=saved_card, plan=hkd_plan, days_before=7
    )
    stripe_api.break_("read_timeout", "/v1/payment_intents")
    due = line.valid_until - timedelta(days=1)
    with clock.frozen(due):
        do_run_autokeep(due)
    run = AutoKeepRun.objects.get()
    assert run.error_code == "provider_unavailable"
    # a run before the retry while the charge is still unconfirmed charges nothing new
    with clock.frozen(due + timedelta(hours=12)):
        do_run_autokeep(due + timedelta(hours=12))
    assert TopUpOrder.objects.filter(line=line).count() == 1
    assert keys(stripe_api.server, "/v1/payment_intents") == {
        f"offsession:{PaymentAttempt.objects.get().public_id}"
    }


def test_a_declined_answer_after_the_timeout_fails_the_order(
    make_line: Any, owner: Any, hkd_plan: Any, saved_card: Any, stripe_api: Provider, ledger_ok: Any
) -> None:
    line = make_line(owner=owner)
    stripe_api.break_("503", "/v1/payment_intents")
    order = do_charge_saved_method(line=line, plan=hkd_plan, channel="auto", idempotency_key="k2")
    stripe_api.mend("/v1/payment_intents", intent("requires_payment_method"))
    do_run_autokeep()
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert PaymentAttempt.objects.get(order=order).failure_code == "card_declined"
    assert balance_by_code(f"wallet:line:{order.line_id}") == 0
    ledger_ok()
