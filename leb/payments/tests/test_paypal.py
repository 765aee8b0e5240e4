"""PayPal: Orders v2 create / capture / refund and webhook verification against
a fake HTTP session (never the network) that answers like PayPal's REST API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.common import clock
from leb.ledger.queries import balance_by_code
from leb.payments.actions import do_refund_attempt
from leb.payments.models import AttemptStatus, PaymentAttempt, ProviderEvent, Refund
from leb.payments.providers import paypal
from leb.payments.providers.base import FAILED, PENDING, PaymentProviderError
from leb.topups.models import OrderStatus

pytestmark = pytest.mark.django_db
BASE = "https://api-m.sandbox.paypal.com"
URL = "/webhooks/paypal"
ORDER_ID = "5O190127TN364715T"
APPROVE_URL = f"https://www.sandbox.paypal.com/checkoutnow?token={ORDER_ID}"


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self.text = json.dumps(body)

    def json(self) -> Any:
        return json.loads(self.text)


def error(status: int, issue: str) -> FakeResponse:
    return FakeResponse(
        status,
        {
            "name": "UNPROCESSABLE_ENTITY",
            "details": [{"issue": issue, "description": issue.lower()}],
            "debug_id": "f00",
        },
    )


class FakePayPal:
    """Answers like PayPal's REST API for one order; records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.order: dict[str, Any] = {}
        self.tokens = 0
        self.expires_in = 32400
        self.capture_status = "COMPLETED"
        self.refund_status = "COMPLETED"
        self.capture_value = ""  # overrides the captured amount
        self.captured_elsewhere = False  # a concurrent capture wins the race
        self.verification = "SUCCESS"
        self.down = False
        self.revoke_next = False

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        path = url.removeprefix(BASE)
        data = kwargs.get("data")
        body: Any = json.loads(data) if isinstance(data, bytes) and data else data
        record = {
            "method": method,
            "path": path,
            "headers": dict(kwargs.get("headers") or {}),
            "body": body,
            "raw": data,
            "auth": kwargs.get("auth"),
        }
        self.requests.append(record)
        if self.down:
            return FakeResponse(503, {"name": "SERVICE_UNAVAILABLE"})
        if path == "/v1/oauth2/token":
            self.tokens += 1
            return FakeResponse(
                200,
                {
                    "access_token": f"A21-{self.tokens}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                },
            )
        if self.revoke_next:
            self.revoke_next = False
            return FakeResponse(401, {"error": "invalid_token"})
        if path == "/v2/checkout/orders" and method == "POST":
            unit = body["purchase_units"][0]
            self.order = {
                "id": ORDER_ID,
                "status": "PAYER_ACTION_REQUIRED",
                "purchase_units": [
                    {
                        "custom_id": unit["custom_id"],
                        "invoice_id": unit["invoice_id"],
                        "amount": unit["amount"],
                    }
                ],
                "links": [
                    {"href": f"{BASE}/v2/checkout/orders/{ORDER_ID}", "rel": "self"},
                    {"href": APPROVE_URL, "rel": "payer-action", "method": "GET"},
                ],
            }
            return FakeResponse(200, self.order)
        if path == f"/v2/checkout/orders/{ORDER_ID}" and method == "GET":
            return FakeResponse(200, self.order)
        if path == f"/v2/checkout/orders/{ORDER_ID}/capture":
            if self.captured_elsewhere:
                self._complete()
                return error(422, "ORDER_ALREADY_CAPTURED")
            if self.order["status"] == "COMPLETED":
                return error(422, "ORDER_ALREADY_CAPTURED")
            if self.order["status"] != "APPROVED":
                return error(422, "ORDER_NOT_APPROVED")
            self._complete()
            return FakeResponse(201, self.order)
        if path == "/v1/notifications/verify-webhook-signature":
            return FakeResponse(200, {"verification_status": self.verification})
        if path.startswith("/v2/payments/refunds/") and method == "GET":
            refund_id = path.rsplit("/", 1)[-1]
            return FakeResponse(200, {"id": refund_id, "status": self.refund_status})
        if path.startswith("/v2/payments/captures/") and path.endswith("/refund"):
            return FakeResponse(201, {"id": "1JU08902781691411", "status": self.refund_status})
        return error(404, "RESOURCE_NOT_FOUND")

    def approve(self) -> None:
        self.order["status"] = "APPROVED"

    def _complete(self) -> None:
        unit = self.order["purchase_units"][0]
        amount = dict(unit["amount"])
        if self.capture_value:
            amount["value"] = self.capture_value
        self.order["status"] = "COMPLETED"
        unit["payments"] = {
            "captures": [
                {
                    "id": "3C679366HH908993F",
                    "status": self.capture_status,
                    "amount": amount,
                    "custom_id": unit["custom_id"],
                }
            ]
        }

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def fake_paypal(settings: Any) -> Iterator[FakePayPal]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "paypal"]
    settings.PAYPAL_CLIENT_ID = "client-id"
    settings.PAYPAL_CLIENT_SECRET = "client-secret"
    settings.PAYPAL_WEBHOOK_ID = "WH-ID-1"
    settings.PAYPAL_API_BASE = BASE
    fake = FakePayPal()
    previous, paypal.http_session = paypal.http_session, fake
    paypal.reset_token_cache()
    try:
        yield fake
    finally:
        paypal.http_session = previous
        paypal.reset_token_cache()


def start(client: Client, order: Any) -> PaymentAttempt:
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=paypal")
    assert response.status_code == 302, response.content
    assert response["Location"] == APPROVE_URL
    return PaymentAttempt.objects.get(order=order)


def return_page(client: Client, attempt: PaymentAttempt, query: str = "") -> str:
    page = client.get(reverse("payments:return", args=[attempt.public_id]) + query)
    assert page.status_code == 200
    return str(page.content.decode())


def headers(at: datetime | None = None, drop: str = "") -> dict[str, str]:
    sent = at or clock.now()
    values = {
        "PAYPAL-TRANSMISSION-ID": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "PAYPAL-TRANSMISSION-TIME": sent.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "PAYPAL-TRANSMISSION-SIG": "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz+Zjh3s3",
        "PAYPAL-CERT-URL": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    return {k: v for k, v in values.items() if k != drop}


def capture_event(
    attempt: PaymentAttempt, kind: str = "PAYMENT.CAPTURE.COMPLETED", **capture: Any
) -> bytes:
    resource = {
        "id": "3C679366HH908993F",
        "status": "COMPLETED",
        "amount": {"currency_code": attempt.currency, "value": "50.00"},
        "custom_id": str(attempt.public_id),
        "invoice_id": str(attempt.order.public_id),
        "supplementary_data": {"related_ids": {"order_id": attempt.provider_reference}},
        **capture,
    }
    # PayPal's own key order and spacing: verification must send these bytes as-is.
    return json.dumps(
        {"id": f"WH-{kind}", "event_version": "1.0", "event_type": kind, "resource": resource},
        indent=1,
    ).encode()


def approved_event(attempt: PaymentAttempt) -> bytes:
    resource = {
        "id": attempt.provider_reference,
        "status": "APPROVED",
        "purchase_units": [{"custom_id": str(attempt.public_id)}],
    }
    return json.dumps(
        {"id": "WH-APPROVED", "event_type": "CHECKOUT.ORDER.APPROVED", "resource": resource}
    ).encode()


def post(client: Client, body: bytes, extra: dict[str, str] | None = None) -> Any:
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers=headers() if extra is None else extra,
    )


def test_order_is_created_from_the_order_and_the_payer_sent_to_approve(
    client: Client, make_order: Any, fake_paypal: FakePayPal
) -> None:
    # given an unpaid HK$50 order
    order = make_order()
    # when a PayPal payment is started
    attempt = start(client, order)
    # then a token was fetched, then one CAPTURE order priced from the order
    token, create = fake_paypal.requests
    assert token["path"] == "/v1/oauth2/token"
    assert token["auth"] == ("client-id", "client-secret")
    assert token["body"] == {"grant_type": "client_credentials"}
    assert create["path"] == "/v2/checkout/orders"
    assert create["headers"]["Authorization"] == "Bearer A21-1"
    assert create["headers"]["PayPal-Request-Id"] == str(attempt.public_id)
    body = create["body"]
    assert body["intent"] == "CAPTURE"
    (unit,) = body["purchase_units"]
    assert unit["amount"] == {"currency_code": "HKD", "value": "50.00"}
    assert unit["custom_id"] == str(attempt.public_id)
    assert unit["invoice_id"] == str(order.public_id)
    context = body["payment_source"]["paypal"]["experience_context"]
    assert context["return_url"].endswith(f"/pay/return/{attempt.public_id}/")
    assert context["cancel_url"].endswith(f"/pay/return/{attempt.public_id}/?cancelled=1")
    assert attempt.provider_reference == ORDER_ID
    assert attempt.status == AttemptStatus.PENDING


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [(5000, "HKD", "50.00"), (1, "USD", "0.01"), (500, "JPY", "500"), (1234, "KWD", "1.234")],
)
def test_minor_units_become_paypal_values_without_floats(
    amount: int, currency: str, value: str
) -> None:
    assert paypal.to_value(amount, currency) == value
    assert paypal.from_value(value, currency) == amount


def test_paypal_values_that_are_not_whole_minor_units_are_refused() -> None:
    assert paypal.from_value("50.001", "HKD") is None
    assert paypal.from_value("abc", "HKD") is None
    assert paypal.from_value("NaN", "HKD") is None
    # PayPal takes no decimals for TWD/HUF, though ISO 4217 has two.
    assert paypal.to_value(10000, "TWD") == "100"
    with pytest.raises(PaymentProviderError):
        paypal.to_value(10050, "TWD")


def test_paypal_not_configured_gives_a_clear_message(
    client: Client, make_order: Any, fake_paypal: FakePayPal, settings: Any
) -> None:
    settings.PAYPAL_CLIENT_SECRET = ""
    order = make_order()
    response = client.post(reverse("payments:start", args=[order.public_id]) + "?provider=paypal")
    assert response.status_code == 400
    assert "not available right now" in response.content.decode()
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.status, attempt.failure_code) == ("failed", "provider_unavailable")
    assert not fake_paypal.requests


def test_return_after_approval_captures_and_fulfils_once(
    client: Client, make_order: Any, fake_paypal: FakePayPal, ledger_ok: Any
) -> None:
    # given a PayPal order the payer approved
    attempt = start(client, make_order())
    fake_paypal.approve()
    # when the payer comes back, reloads, and the capture webhook arrives too
    first = return_page(client, attempt)
    second = return_page(client, attempt)
    late = post(client, capture_event(attempt))
    # then the order was captured once, idempotently, and fulfilled once
    assert 'data-state="success"' in first and 'data-state="success"' in second
    (capture,) = fake_paypal.calls(f"/v2/checkout/orders/{ORDER_ID}/capture")
    assert capture["headers"]["PayPal-Request-Id"] == f"{attempt.public_id}:capture"
    assert late.json()["outcome"] == "duplicate"
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.order.status == OrderStatus.FULFILLED
    assert attempt.provider_data["capture_id"] == "3C679366HH908993F"
    assert balance_by_code(f"wallet:line:{attempt.order.line_id}") == 5000
    ledger_ok()


def test_declined_capture_fails_the_order(
    client: Client, make_order: Any, fake_paypal: FakePayPal
) -> None:
    attempt = start(client, make_order())
    fake_paypal.approve()
    fake_paypal.capture_status = "DECLINED"
    assert 'data-state="failure"' in return_page(client, attempt)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "declined")
    assert attempt.order.status == OrderStatus.FAILED


def test_voided_order_fails_the_attempt(
    client: Client, make_order: Any, fake_paypal: FakePayPal
) -> None:
    attempt = start(client, make_order())
    fake_paypal.order["status"] = "VOIDED"
    assert 'data-state="failure"' in return_page(client, attempt)
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "voided")
    assert not fake_paypal.calls(f"/v2/checkout/orders/{ORDER_ID}/capture")


def test_already_captured_order_uses_its_capture(
    client: Client, make_order: Any, fake_paypal: FakePayPal, ledger_ok: Any
) -> None:
    # given an approved order that something else captures first
    attempt = start(client, make_order())
    fake_paypal.approve()
    fake_paypal.captured_elsewhere = True
    # when the payer comes back
    page = return_page(client, attempt)
    # then the 422 ORDER_ALREADY_CAPTURED leads to the order's own capture
    assert 'data-state="success"' in page
    paths = [r["path"] for r in fake_paypal.requests[-2:]]
    assert paths == [f"/v2/checkout/orders/{ORDER_ID}/capture", f"/v2/checkout/orders/{ORDER_ID}"]
    attempt.refresh_from_db()
    assert attempt.order.status == OrderStatus.FULFILLED
    ledger_ok()


def test_cancel_link_before_approval_cancels_without_capturing(
    client: Client, make_order: Any, fake_paypal: FakePayPal
) -> None:
    attempt = start(client, make_order())
    assert 'data-state="failure"' in return_page(client, attempt, "?cancelled=1")
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.CANCELLED
    assert not fake_paypal.calls(f"/v2/checkout/orders/{ORDER_ID}/capture")


def test_captured_amount_differing_from_the_order_is_refused(
    client: Client, make_order: Any, fake_paypal: FakePayPal, ledger_ok: Any
) -> None:
    # given PayPal reporting a capture of HK$49.99 for a HK$50 order
    attempt = start(client, make_order())
    fake_paypal.approve()
    fake_paypal.capture_value = "49.99"
    # when the payer comes back
    return_page(client, attempt)
    # then nothing is paid or fulfilled, and the facts are kept
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "amount_mismatch")
    assert attempt.order.status == OrderStatus.PENDING_PAYMENT
    assert attempt.order.paid_at is None
    assert AuditEntry.objects.filter(action="payment.amount_mismatch").count() == 1
    ledger_ok()


def test_verified_capture_webhook_fulfils_and_replay_is_a_no_op(
    client: Client, make_order: Any, fake_paypal: FakePayPal, ledger_ok: Any
) -> None:
    # given a started PayPal payment and PayPal's capture notification
    attempt = start(client, make_order())
    body = capture_event(attempt)
    # when it is delivered twice
    first = post(client, body)
    second = post(client, body)
    # then PayPal verified it, and the order is fulfilled once
    assert first.status_code == 200 and first.json()["outcome"] == "fulfilled"
    assert second.json()["outcome"] == "duplicate"
    verify = fake_paypal.calls("/v1/notifications/verify-webhook-signature")[0]
    assert verify["raw"].endswith(b'"webhook_event": ' + body + b"}")
    sent = verify["body"]
    assert sent["webhook_id"] == "WH-ID-1"
    assert sent["transmission_id"] == "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
    assert sent["auth_algo"] == "SHA256withRSA"
    assert sent["cert_url"].startswith("https://api.sandbox.paypal.com/")
    assert sent["transmission_sig"] and sent["transmission_time"]
    assert sent["webhook_event"]["id"] == "WH-PAYMENT.CAPTURE.COMPLETED"
    attempt.refresh_from_db()
    assert attempt.order.status == OrderStatus.FULFILLED
    assert ProviderEvent.objects.filter(provider="paypal").count() == 1
    assert balance_by_code(f"wallet:line:{attempt.order.line_id}") == 5000
    ledger_ok()


def test_order_approved_webhook_captures_it(
    client: Client, make_order: Any, fake_paypal: FakePayPal, ledger_ok: Any
) -> None:
    # given a payer who approved but never came back
    attempt = start(client, make_order())
    fake_paypal.approve()
    # when PayPal says the order was approved, twice
    first = post(client, approved_event(attempt))
    second = post(client, approved_event(attempt))
    # then leb captured it once and fulfilled the order
    assert first.json()["outcome"] == "fulfilled"
    assert second.json()["outcome"] == "duplicate"
    assert len(fake_paypal.calls(f"/v2/checkout/orders/{ORDER_ID}/capture")) == 1
    attempt.refresh_from_db()
    assert attempt.order.status == OrderStatus.FULFILLED
    ledger_ok()


@pytest.mark.parametrize("kind", ["PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.DECLINED"])
def test_denied_capture_webhook_fails_the_order(
    client: Client, make_order: Any, fake_paypal: FakePayPal, kind: str
) -> None:
    attempt = start(client, make_order())
    response = post(client, capture_event(attempt, kind, status="DECLINED"))
    assert response.json()["outcome"] == "failed"
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, "declined")
    assert attempt.order.status == OrderStatus.FAILED


@pytest.mark.parametrize(
    ("how", "status"),
    [("failure", 401), ("not configured", 401), ("stale", 401), ("future", 401), ("garbage", 400)],
)
def test_untrusted_paypal_webhooks_are_rejected(
    client: Client,
    make_order: Any,
    fake_paypal: FakePayPal,
    settings: Any,
    how: str,
    status: int,
) -> None:
    # given a webhook that must not be trusted
    attempt = start(client, make_order())
    body = capture_event(attempt)
    sent = headers()
    if how == "failure":
        fake_paypal.verification = "FAILURE"
    elif how == "not configured":
        settings.PAYPAL_WEBHOOK_ID = ""
    elif how == "stale":
        sent = headers(at=clock.now() - timedelta(seconds=301))
    elif how == "future":
        sent = headers(at=clock.now() + timedelta(seconds=301))
    else:
        body = b"{not json"
    # when it is posted
    response = post(client, body, sent)
    # then it is refused with a problem document and nothing happens
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    if how in ("stale", "future"):
        assert "tolerance" in response.json()["title"]
        assert not fake_paypal.calls("/v1/notifications/verify-webhook-signature")
    assert not ProviderEvent.objects.exists()
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PENDING


@pytest.mark.parametrize("missing", [*paypal.TRANSMISSION_HEADERS.values(), "all"])
def test_missing_transmission_headers_are_a_400(
    client: Client, fake_paypal: FakePayPal, missing: str
) -> None:
    sent = {} if missing == "all" else headers(drop=missing)
    response = post(client, b'{"id": "WH-1", "event_type": "X", "resource": {}}', sent)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not fake_paypal.calls("/v1/notifications/verify-webhook-signature")


def test_verification_unavailable_asks_paypal_to_deliver_again(
    client: Client, make_order: Any, fake_paypal: FakePayPal
) -> None:
    attempt = start(client, make_order())
    fake_paypal.down = True
    response = post(client, capture_event(attempt))
    assert response.status_code == 503
    assert not ProviderEvent.objects.exists()


def test_event_for_an_unknown_attempt_is_stored_not_settled(
    client: Client, fake_paypal: FakePayPal
) -> None:
    body = json.dumps(
        {
            "id": "WH-X",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {"id": "C", "status": "COMPLETED", "custom_id": "not-a-uuid"},
        }
    ).encode()
    response = post(client, body)
    assert response.json()["outcome"] == "unknown_attempt"


def test_refund_goes_through_paypal(
    client: Client, make_order: Any, fake_paypal: FakePayPal, now: datetime, ledger_ok: Any
) -> None:
    # given a fulfilled PayPal payment
    attempt = start(client, make_order())
    post(client, capture_event(attempt))
    attempt.refresh_from_db()
    # when it is refunded
    refunded = do_refund_attempt(attempt, reason="asked", actor="staff:finance", now=now)
    # then PayPal was asked once, idempotently, for the whole captured amount
    request = fake_paypal.requests[-1]
    assert request["method"] == "POST"
    assert request["path"] == "/v2/payments/captures/3C679366HH908993F/refund"
    refund = Refund.objects.get(attempt=attempt)
    assert request["body"] == {
        "amount": {"currency_code": "HKD", "value": "50.00"},
        "custom_id": str(refund.public_id),
    }
    assert request["headers"]["PayPal-Request-Id"] == refund.idempotency_key
    assert refunded.status == AttemptStatus.REFUNDED
    assert refunded.provider_data["refund"] == "1JU08902781691411"
    assert refunded.order.status == OrderStatus.REFUNDED
    ledger_ok()


def test_token_is_reused_until_shortly_before_expiry(fake_paypal: FakePayPal) -> None:
    # given a token PayPal says lasts an hour
    fake_paypal.expires_in = 3600
    # when the API is called twice, then again near the end of the hour
    paypal.call("GET", f"/v2/checkout/orders/{ORDER_ID}")
    paypal.call("GET", f"/v2/checkout/orders/{ORDER_ID}")
    assert fake_paypal.tokens == 1
    clock.advance(timedelta(seconds=3600 - paypal.TOKEN_MARGIN_SECONDS + 1))
    paypal.call("GET", f"/v2/checkout/orders/{ORDER_ID}")
    # then a new token was fetched only then, and used
    assert fake_paypal.tokens == 2
    assert fake_paypal.requests[-1]["headers"]["Authorization"] == "Bearer A21-2"


def test_revoked_token_is_renewed_once(fake_paypal: FakePayPal) -> None:
    paypal.call("GET", f"/v2/checkout/orders/{ORDER_ID}")
    fake_paypal.revoke_next = True
    paypal.call("GET", f"/v2/checkout/orders/{ORDER_ID}")
    assert fake_paypal.tokens == 2
    assert fake_paypal.requests[-1]["headers"]["Authorization"] == "Bearer A21-2"


def test_order_outcome_mapping() -> None:
    assert paypal.order_outcome({"id": "O", "status": "APPROVED"}).status == PENDING
    pending = {"id": "O", "purchase_units": [{"payments": {"captures": [{"status": "PENDING"}]}}]}
    assert paypal.order_outcome(pending).status == PENDING
    voided = paypal.order_outcome({"id": "O", "status": "VOIDED"})
    assert (voided.status, voided.failure_code) == (FAILED, "voided")
