"""Stripe: Checkout Session creation against a fake HTTP client (never the
network) and webhooks signed here, independently of the SDK, per Stripe's
documented scheme: HMAC-SHA256 over "{t}.{payload}", header t=...,v1=..."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import stripe
from django.test import Client
from django.urls import reverse

from leb.ledger.queries import balance_by_code
from leb.payments.actions import do_refund_attempt
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent, Refund
from leb.payments.providers import stripe as stripe_provider
from leb.topups.models import OrderStatus

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_secret"
URL = "/webhooks/stripe"


class FakeStripeHTTP(stripe.HTTPClient):
    """Answers the SDK like Stripe's API would; records what was asked."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.session: dict[str, Any] = {}
        self.fail = False
        self.refund_status = "succeeded"
        self.refund_id = "re_123"

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any
    ) -> tuple[str, int, dict[str, str]]:
        form = parse_qs(post_data or "")
        self.requests.append(
            {"method": method, "url": url, "headers": dict(headers or {}), "form": form}
        )
        if self.fail:
            return (
                json.dumps({"error": {"message": "Stripe is down", "type": "api_error"}}),
                500,
                {},
            )
        if url.endswith("/v1/checkout/sessions") and method == "post":
            self.session = {
                "id": "cs_test_123",
                "object": "checkout.session",
                "url": "https://checkout.stripe.com/c/pay/cs_test_123",
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": int(form["line_items[0][price_data][unit_amount]"][0]),
                "currency": form["line_items[0][price_data][currency]"][0],
                "metadata": {"attempt": form["metadata[attempt]"][0]},
                "payment_intent": None,
            }
            return json.dumps(self.session), 200, {}
        if "/v1/checkout/sessions/" in url:
            return json.dumps(self.session), 200, {}
        if "/v1/refunds/" in url and method == "get":
            refund_id = url.rsplit("/", 1)[-1]
            refund = {"id": refund_id, "object": "refund", "status": self.refund_status}
            return json.dumps(refund), 200, {}
        if url.endswith("/v1/refunds"):
            refund = {"id": self.refund_id, "object": "refund", "status": self.refund_status}
            return json.dumps(refund), 200, {}
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
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    fake = FakeStripeHTTP()
    previous, stripe_provider.http_client = stripe_provider.http_client, fake
    try:
        yield fake
    finally:
        stripe_provider.http_client = previous


def start(client: Client, order: Any) -> PaymentAttempt:
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=stripe")
    assert response.status_code == 302, response.content
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_123"
    return PaymentAttempt.objects.get(order=order)


def stripe_header(payload: str, t: int | None = None, secret: str = SECRET, extra: str = "") -> str:
    t = int(time.time()) if t is None else t
    signature = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},{extra}v1={signature}"


def session_event(
    attempt: PaymentAttempt, kind: str = "checkout.session.completed", **session: Any
) -> str:
    obj = {
        "id": attempt.provider_reference,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": attempt.amount,
        "currency": attempt.currency.lower(),
        "payment_intent": "pi_123",
        "client_reference_id": str(attempt.order.public_id),
        "metadata": {"attempt": str(attempt.public_id)},
        **session,
    }
    return json.dumps(
        {"id": f"evt_{kind}", "object": "event", "type": kind, "data": {"object": obj}}
    )


def post(client: Client, payload: str, header: str) -> Any:
    return client.post(
        URL, data=payload, content_type="application/json", headers={"Stripe-Signature": header}
    )


def test_checkout_session_is_created_from_the_order(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP
) -> None:
    # given an unpaid order
    order = make_order()
    # when a Stripe payment is started
    attempt = start(client, order)
    # then one Checkout Session was asked for, priced from the order
    (request,) = fake_stripe.requests
    form = request["form"]
    assert request["url"] == "https://api.stripe.com/v1/checkout/sessions"
    assert form["mode"] == ["payment"]
    assert form["line_items[0][price_data][unit_amount]"] == ["5000"]
    assert form["line_items[0][price_data][currency]"] == ["hkd"]
    assert form["line_items[0][quantity]"] == ["1"]
    assert form["client_reference_id"] == [str(order.public_id)]
    assert form["metadata[attempt]"] == [str(attempt.public_id)]
    assert form["success_url"][0].endswith(f"/pay/return/{attempt.public_id}/")
    assert form["cancel_url"][0].endswith(f"/pay/return/{attempt.public_id}/?cancelled=1")
    assert request["headers"]["Idempotency-Key"] == f"checkout:{attempt.public_id}"
    assert request["headers"]["Authorization"] == "Bearer sk_test_fake"
    assert attempt.provider_reference == "cs_test_123"
    assert attempt.status == AttemptStatus.PENDING


def test_stripe_down_gives_a_clear_message(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, settings: Any
) -> None:
    # given Stripe answering errors
    fake_stripe.fail = True
    order = make_order()
    # when a payment is started
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=stripe")
    # then the payer is told, and the attempt records the failure
    assert response.status_code == 400
    assert "not available right now" in response.content.decode()
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.status, attempt.failure_code) == ("failed", "provider_unavailable")


def test_stripe_disabled_is_refused(client: Client, make_order: Any) -> None:
    order = make_order()
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=stripe")
    assert response.status_code == 400


def test_paid_session_webhook_fulfils_and_replay_is_a_no_op(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, ledger_ok: Any
) -> None:
    # given a started Stripe payment
    attempt = start(client, make_order())
    payload = session_event(attempt)
    # when the completed event is delivered, then replayed
    first = post(client, payload, stripe_header(payload))
    second = post(client, payload, stripe_header(payload))
    # then the order is fulfilled once
    assert first.status_code == 200 and first.json()["outcome"] == "fulfilled"
    assert second.json()["outcome"] == "duplicate"
    attempt.refresh_from_db()
    assert attempt.order.status == OrderStatus.FULFILLED
    assert attempt.provider_data["payment_intent"] == "pi_123"
    assert balance_by_code(f"wallet:line:{attempt.order.line_id}") == 5000
    assert ProviderEvent.objects.filter(provider="stripe").count() == 1
    ledger_ok()


def test_completed_but_unpaid_waits_for_async_result(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, ledger_ok: Any
) -> None:
    # given a delayed payment method: completed, not yet paid
    attempt = start(client, make_order())
    unpaid = session_event(attempt, payment_status="unpaid")
    assert post(client, unpaid, stripe_header(unpaid)).json()["outcome"] == "pending"
    assert attempt.order.status == OrderStatus.PENDING_PAYMENT
    # when the async payment succeeds
    done = session_event(attempt, "checkout.session.async_payment_succeeded")
    # then the order is fulfilled
    assert post(client, done, stripe_header(done)).json()["outcome"] == "fulfilled"
    ledger_ok()


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("checkout.session.async_payment_failed", AttemptStatus.FAILED, "async_payment_failed"),
        ("checkout.session.expired", AttemptStatus.CANCELLED, "expired"),
    ],
)
def test_failed_and_expired_sessions_fail_the_order(
    client: Client,
    make_order: Any,
    fake_stripe: FakeStripeHTTP,
    kind: str,
    status: str,
    code: str,
) -> None:
    attempt = start(client, make_order())
    payload = session_event(attempt, kind, payment_status="unpaid", status="expired")
    assert post(client, payload, stripe_header(payload)).json()["outcome"] == "failed"
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (status, code)
    assert attempt.order.status == OrderStatus.FAILED


@pytest.mark.parametrize("how", ["tampered", "stale", "wrong secret", "missing"])
def test_untrusted_stripe_webhooks_are_rejected(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, how: str
) -> None:
    # given a webhook that must not be trusted
    attempt = start(client, make_order())
    payload = session_event(attempt)
    header = stripe_header(payload)
    if how == "tampered":
        payload = payload.replace('"amount_total": 5000', '"amount_total": 1')
    elif how == "stale":
        header = stripe_header(payload, t=int(time.time()) - 301)
    elif how == "wrong secret":
        header = stripe_header(payload, secret="whsec_other")
    else:
        header = ""
    # when it is posted
    response = post(client, payload, header)
    # then it is refused with a problem document and nothing happens
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    if how == "stale":
        assert "tolerance" in response.json()["title"]
    assert not ProviderEvent.objects.exists()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PENDING


def test_several_v1_signatures_are_accepted(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, ledger_ok: Any
) -> None:
    # given a header signed with a rolled secret and the current one
    attempt = start(client, make_order())
    payload = session_event(attempt)
    old = hmac.new(b"whsec_old", b"x", hashlib.sha256).hexdigest()
    header = stripe_header(payload, extra=f"v1={old},v0=abc,")
    # when posted, then accepted
    assert post(client, payload, header).json()["outcome"] == "fulfilled"
    ledger_ok()


def test_unparseable_body_with_valid_signature_is_a_400(
    client: Client, fake_stripe: FakeStripeHTTP
) -> None:
    payload = "{not json"
    response = post(client, payload, stripe_header(payload))
    assert response.status_code == 400


def test_return_page_asks_stripe_and_settles(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, ledger_ok: Any
) -> None:
    # given a Stripe session that Stripe now reports as paid
    attempt = start(client, make_order())
    fake_stripe.session.update(status="complete", payment_status="paid", payment_intent="pi_9")
    # when the payer comes back before any webhook
    page = client.get(reverse("payments:return", args=[attempt.public_id]))
    # then the session is fetched and the order fulfilled
    assert 'data-state="success"' in page.content.decode()
    assert fake_stripe.requests[-1]["url"].endswith("/v1/checkout/sessions/cs_test_123")
    attempt.refresh_from_db()
    assert attempt.provider_data["payment_intent"] == "pi_9"
    ledger_ok()


def test_cancel_link_marks_an_open_session_cancelled(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP
) -> None:
    attempt = start(client, make_order())
    page = client.get(reverse("payments:return", args=[attempt.public_id]) + "?cancelled=1")
    assert 'data-state="failure"' in page.content.decode()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.CANCELLED


def test_refund_goes_through_stripe(
    client: Client, make_order: Any, fake_stripe: FakeStripeHTTP, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled Stripe payment
    attempt = start(client, make_order())
    payload = session_event(attempt)
    post(client, payload, stripe_header(payload))
    attempt.refresh_from_db()
    # when it is refunded
    refunded = do_refund_attempt(attempt, reason="asked", actor="staff:finance", now=now)
    # then Stripe was asked once, idempotently, for the whole amount
    request = fake_stripe.requests[-1]
    assert request["url"] == "https://api.stripe.com/v1/refunds"
    refund = Refund.objects.get(attempt=attempt)
    assert request["form"] == {
        "payment_intent": ["pi_123"],
        "amount": ["5000"],
        "metadata[refund]": [str(refund.public_id)],
        "metadata[attempt]": [str(attempt.public_id)],
    }
    assert request["headers"]["Idempotency-Key"] == refund.idempotency_key
    assert refunded.status == AttemptStatus.REFUNDED
    assert refunded.order.status == OrderStatus.REFUNDED
    ledger_ok()


def test_stripe_session_outcome_mapping() -> None:
    outcome = stripe_provider.session_outcome(
        {"id": "cs", "status": "complete", "payment_status": "unpaid"}
    )
    assert outcome.status == "pending"
    assert (
        stripe_provider.session_outcome({"id": "cs", "status": "expired"}).failure_code == "expired"
    )
