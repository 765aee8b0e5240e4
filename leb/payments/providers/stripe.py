"""Stripe Checkout through the official SDK. Stripe hosts the card form;
leb only ever sees session ids and amounts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .base import (
    CANCELLED,
    FAILED,
    PENDING,
    SUCCEEDED,
    ForgedWebhook,
    Outcome,
    PaymentProvider,
    PaymentProviderError,
    StaleWebhook,
    UnparseableWebhook,
    WebhookEvent,
    payload_hash,
)

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder

    from ..models import PaymentAttempt

# Tests point the SDK at a fake HTTP client; production uses the SDK's default.
http_client: stripe.HTTPClient | None = None


def client() -> stripe.StripeClient:
    api_key = str(getattr(settings, "STRIPE_SECRET_KEY", ""))
    if not api_key:
        raise PaymentProviderError(_("Card payments are not configured."), code="not_configured")
    return stripe.StripeClient(api_key, http_client=http_client, max_network_retries=2)


def session_outcome(session: Any) -> Outcome:
    """Map a Checkout Session to an outcome: paid only when Stripe says "paid"."""
    data = {"checkout_session": session.get("id")}
    if session.get("payment_intent"):
        intent = session["payment_intent"]
        data["payment_intent"] = intent if isinstance(intent, str) else intent.get("id")
    if (
        session.get("payment_status") in ("paid", "no_payment_required")
        and session.get("status") == "complete"
    ):
        return Outcome(
            SUCCEEDED,
            amount=session.get("amount_total"),
            currency=str(session.get("currency") or "").upper(),
            reference=str(session.get("id") or ""),
            data=data,
        )
    if session.get("status") == "expired":
        return Outcome(FAILED, failure_code="expired", data=data)
    return Outcome(PENDING, data=data)


class StripeProvider(PaymentProvider):
    name = "stripe"
    label = _("Card (Stripe)")

    def start_checkout(
        self, order: TopUpOrder, attempt: PaymentAttempt, return_url: str, cancel_url: str
    ) -> str:
        from leb.lines.identifiers import format_msisdn

        params: Any = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency.lower(),
                        "unit_amount": order.price,
                        "product_data": {
                            "name": str(_("Top-up for %(number)s"))
                            % {"number": format_msisdn(order.line.msisdn)}
                        },
                    },
                }
            ],
            "client_reference_id": str(order.public_id),
            "metadata": {"order": str(order.public_id), "attempt": str(attempt.public_id)},
            "payment_intent_data": {
                "metadata": {"order": str(order.public_id), "attempt": str(attempt.public_id)}
            },
            "success_url": return_url,
            "cancel_url": cancel_url,
        }
        try:
            session = client().v1.checkout.sessions.create(
                params, options={"idempotency_key": f"checkout:{attempt.public_id}"}
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc.user_message or exc)) from exc
        attempt.provider_reference = session.id
        return str(session.url)

    def parse_webhook(self, request: HttpRequest) -> WebhookEvent:
        secret = str(getattr(settings, "STRIPE_WEBHOOK_SECRET", ""))
        if not secret:
            raise ForgedWebhook(_("Webhook secret not configured."))
        body = request.body
        try:
            stripe.Webhook.construct_event(
                body.decode("utf-8"), request.headers.get("Stripe-Signature", ""), secret
            )
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc):
                raise StaleWebhook(
                    _("The signature timestamp is too old or in the future.")
                ) from exc
            raise ForgedWebhook(_("The signature does not match the body.")) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise UnparseableWebhook(_("The webhook body is not valid JSON.")) from exc
        try:
            # Verified above; read it as plain JSON rather than SDK objects.
            event = json.loads(body)
            kind = str(event["type"])
            session = event["data"]["object"]
            event_id = str(event["id"])
            if not isinstance(session, dict):
                raise TypeError("event object is not a JSON object")
        except (KeyError, TypeError, ValueError) as exc:
            raise UnparseableWebhook(_("The webhook body is not a valid Stripe event.")) from exc
        outcome = _event_outcome(kind, session) if kind.startswith("checkout.session.") else None
        metadata = session.get("metadata") or {}
        return WebhookEvent(
            provider=self.name,
            event_id=event_id[:255],
            type=kind,
            payload_sha256=payload_hash(body),
            attempt_id=str(metadata.get("attempt") or ""),
            reference=str(session.get("id") or ""),
            outcome=outcome,
        )

    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        if not attempt.provider_reference:
            return Outcome(PENDING)
        try:
            session = client().v1.checkout.sessions.retrieve(attempt.provider_reference)
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc)) from exc
        return session_outcome(session.to_dict())

    def refund(self, attempt: PaymentAttempt, amount: int) -> str:
        intent = attempt.provider_data.get("payment_intent")
        try:
            if not intent:
                intent = self.fetch_status(attempt).data.get("payment_intent")
            if not intent:
                raise PaymentProviderError(_("Stripe has no payment to refund."))
            refund = client().v1.refunds.create(
                {"payment_intent": intent, "amount": amount},
                options={"idempotency_key": f"refund:{attempt.public_id}"},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc)) from exc
        return str(refund.id)


def _event_outcome(kind: str, session: Any) -> Outcome | None:
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        # "completed" with payment_status "unpaid" is a delayed method still in flight.
        return session_outcome(session)
    if kind == "checkout.session.async_payment_failed":
        return Outcome(FAILED, failure_code="async_payment_failed")
    if kind == "checkout.session.expired":
        return Outcome(CANCELLED, failure_code="expired")
    return None
