"""The built-in sandbox gateway: a hosted checkout with test cards, signed
webhooks delivered asynchronously, and a status API, so the whole payment flow
runs locally exactly as it would against a real provider."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from leb import clock

from .base import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    ForgedWebhook,
    Outcome,
    PaymentProvider,
    StaleWebhook,
    UnparseableWebhook,
    WebhookEvent,
    payload_hash,
)

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder

    from ..models import PaymentAttempt

SIGNATURE_HEADER = "Leb-Sandbox-Signature"
TOLERANCE_SECONDS = 300
CHALLENGE = "challenge"

# Test card numbers and what the sandbox does with them.
TEST_CARDS = {
    "4242424242424242": SUCCEEDED,
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000002500003155": CHALLENGE,
}


def classify_card(number: str) -> str:
    """SUCCEEDED, CHALLENGE or a failure code for a (valid) card number."""
    return TEST_CARDS.get(number, "card_not_supported")


def webhook_secret() -> str:
    configured = getattr(settings, "PAYMENTS_SANDBOX_WEBHOOK_SECRET", "")
    if configured:
        return str(configured)
    # Derived, so a fresh install signs and verifies without configuration.
    return hmac.new(
        settings.SECRET_KEY.encode(), b"leb.payments.sandbox.webhook", hashlib.sha256
    ).hexdigest()


def sign(body: bytes, timestamp: int, secret: str | None = None) -> str:
    secret = secret or webhook_secret()
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def gateway_state(attempt: PaymentAttempt) -> dict[str, Any]:
    return dict(attempt.provider_data.get("gateway") or {})


def _outcome_for(attempt: PaymentAttempt, state: dict[str, Any]) -> Outcome:
    status = state.get("state", PENDING)
    if status == SUCCEEDED:
        return Outcome(
            SUCCEEDED,
            amount=attempt.amount,
            currency=attempt.currency,
            reference=attempt.provider_reference or "",
        )
    if status in (FAILED, CANCELLED):
        return Outcome(status, failure_code=state.get("code", ""))
    return Outcome(PENDING)


def complete_at_gateway(attempt: PaymentAttempt, status: str, code: str = "") -> PaymentAttempt:
    """Record the gateway's decision once and queue its webhook in the same
    commit. Later decisions for the same attempt are ignored, like a real
    gateway that has already captured or declined."""
    from ..models import PaymentAttempt
    from ..tasks import deliver_sandbox_webhook

    with transaction.atomic():
        attempt = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        state = gateway_state(attempt)
        if state.get("state") in (SUCCEEDED, FAILED, CANCELLED):
            return attempt
        now = clock.now()
        state = {"state": status, "code": code, "at": int(now.timestamp())}
        attempt.provider_data = {**attempt.provider_data, "gateway": state}
        attempt.save(update_fields=["provider_data"])
        body = {
            "id": f"evt_sbx_{uuid.uuid4().hex}",
            "type": "payment.succeeded" if status == SUCCEEDED else "payment.failed",
            "attempt": str(attempt.public_id),
            "amount": attempt.amount,
            "currency": attempt.currency,
            "created": int(now.timestamp()),
        }
        if code:
            body["failure_code"] = code
        deliver_sandbox_webhook.enqueue(json.dumps(body, separators=(",", ":")))
    return attempt


def begin_challenge(attempt: PaymentAttempt) -> None:
    from ..models import PaymentAttempt

    with transaction.atomic():
        locked = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        if not gateway_state(locked):
            locked.provider_data = {**locked.provider_data, "gateway": {"state": CHALLENGE}}
            locked.save(update_fields=["provider_data"])


class SandboxProvider(PaymentProvider):
    name = "sandbox"
    label = _("Test payment (sandbox)")

    def start_checkout(
        self, order: TopUpOrder, attempt: PaymentAttempt, return_url: str, cancel_url: str
    ) -> str:
        attempt.provider_reference = f"sbx_{attempt.public_id.hex}"
        attempt.provider_data = {
            **attempt.provider_data,
            "return_url": return_url,
            "cancel_url": cancel_url,
        }
        return reverse("payments:sandbox_checkout", args=[attempt.public_id])

    def parse_webhook(self, request: HttpRequest) -> WebhookEvent:
        header = request.headers.get(SIGNATURE_HEADER, "")
        timestamp, signatures = _parse_signature_header(header)
        body = request.body
        expected = sign(body, timestamp).split("v1=", 1)[1]
        if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            raise ForgedWebhook(_("The signature does not match the body."))
        if abs(clock.now().timestamp() - timestamp) > TOLERANCE_SECONDS:
            raise StaleWebhook(_("The signature timestamp is too old or in the future."))
        try:
            data = json.loads(body)
            event_id = str(data["id"])
            kind = str(data["type"])
            attempt_id = str(uuid.UUID(str(data["attempt"])))
            amount = data["amount"]
            currency = str(data["currency"]).upper()
        except (ValueError, KeyError, TypeError) as exc:
            raise UnparseableWebhook(_("The webhook body is not a valid sandbox event.")) from exc
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise UnparseableWebhook(_("The webhook body is not a valid sandbox event."))
        if kind == "payment.succeeded":
            outcome = Outcome(SUCCEEDED, amount=amount, currency=currency)
        elif kind == "payment.failed":
            code = str(data.get("failure_code", ""))[:50]
            outcome = Outcome(CANCELLED if code == "cancelled" else FAILED, failure_code=code)
        else:
            raise UnparseableWebhook(_("Unknown event type."))
        return WebhookEvent(
            provider=self.name,
            event_id=event_id[:255],
            type=kind,
            payload_sha256=payload_hash(body),
            attempt_id=attempt_id,
            outcome=outcome,
        )

    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        return _outcome_for(attempt, gateway_state(attempt))

    def refund(self, attempt: PaymentAttempt, amount: int) -> str:
        return f"sbx_refund_{attempt.public_id.hex}"


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _sep, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                timestamp = None
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise ForgedWebhook(_("The signature header is missing or malformed."))
    return timestamp, signatures
