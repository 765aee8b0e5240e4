"""Stripe Checkout through the official SDK. Stripe hosts the card form;
leb only ever sees session ids and amounts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .base import (
    CANCELLED,
    CAPTURE,
    FAILED,
    PENDING,
    REFUND,
    SUCCEEDED,
    ForgedWebhook,
    Outcome,
    PaymentProvider,
    PaymentProviderError,
    ProviderRefund,
    ProviderTransaction,
    RefundNotice,
    SavedCard,
    SetupStart,
    StaleWebhook,
    UnparseableWebhook,
    WebhookEvent,
    payload_hash,
)

if TYPE_CHECKING:
    from leb.topups.models import TopUpOrder

    from ..models import PaymentAttempt, Refund

# Tests may point the SDK at a fake HTTP client; production uses `requests`
# with the configured timeouts.
http_client: stripe.HTTPClient | None = None
DEFAULT_API_BASE = "https://api.stripe.com"


@cache
def _requests_client(connect: float, read: float) -> stripe.HTTPClient:
    # One per pair of timeouts: it keeps its connections open between calls.
    return stripe.RequestsClient(timeout=(connect, read))


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds for a provider call, from the settings."""
    return (
        float(getattr(settings, "PAYMENT_CONNECT_TIMEOUT", 5)),
        float(getattr(settings, "PAYMENT_READ_TIMEOUT", 30)),
    )


def client() -> stripe.StripeClient:
    api_key = str(getattr(settings, "STRIPE_SECRET_KEY", ""))
    if not api_key:
        raise PaymentProviderError(_("Card payments are not configured."), code="not_configured")
    base = str(getattr(settings, "STRIPE_API_BASE", "") or DEFAULT_API_BASE).rstrip("/")
    # The SDK tries twice more after a timeout, a dropped connection or a 5xx,
    # with the same idempotency key: Stripe answers a repeat with the first result.
    return stripe.StripeClient(
        api_key,
        http_client=http_client or _requests_client(*timeouts()),
        max_network_retries=2,
        base_addresses={"api": base},
    )


def _field(obj: Any, name: str) -> str:
    """A field Stripe must have sent; a 200 without it is not an answer."""
    data = obj.to_dict() if isinstance(obj, stripe.StripeObject) else obj
    value = data.get(name) if isinstance(data, dict) else None
    if not value:
        raise PaymentProviderError(f"Stripe answered without {name!r}", code="bad_answer")
    return str(value)


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
        url = _field(session, "url")
        attempt.provider_reference = _field(session, "id")
        return url

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
        if not isinstance(metadata, dict):
            metadata = {}
        refunds = _refund_notices(kind, session)
        if refunds and kind == "charge.refunded":
            # A charge: the attempt is found by its payment intent.
            return WebhookEvent(
                provider=self.name,
                event_id=event_id[:255],
                type=kind,
                payload_sha256=payload_hash(body),
                attempt_id=str(metadata.get("attempt") or ""),
                reference=str(session.get("payment_intent") or ""),
                refunds=refunds,
            )
        return WebhookEvent(
            provider=self.name,
            event_id=event_id[:255],
            type=kind,
            payload_sha256=payload_hash(body),
            attempt_id=str(metadata.get("attempt") or ""),
            reference=str(session.get("id") or ""),
            outcome=outcome,
            refunds=refunds,
        )

    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        if not attempt.provider_reference:
            return Outcome(PENDING)
        if attempt.provider_data.get("off_session"):
            try:
                intent = client().v1.payment_intents.retrieve(attempt.provider_reference)
            except stripe.StripeError as exc:
                raise PaymentProviderError(str(exc)) from exc
            return intent_outcome(intent.to_dict())
        try:
            session = client().v1.checkout.sessions.retrieve(attempt.provider_reference)
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc)) from exc
        return session_outcome(session.to_dict())

    def refund(
        self, attempt: PaymentAttempt, amount: int, *, idempotency_key: str, refund_id: str
    ) -> ProviderRefund:
        intent = attempt.provider_data.get("payment_intent")
        try:
            if not intent:
                intent = self.fetch_status(attempt).data.get("payment_intent")
            if not intent:
                raise PaymentProviderError(_("Stripe has no payment to refund."))
            refund = client().v1.refunds.create(
                {
                    "payment_intent": intent,
                    "amount": amount,
                    "metadata": {"refund": refund_id, "attempt": str(attempt.public_id)},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc)) from exc
        refund_reference = _field(refund, "id")
        status = refund.to_dict().get("status")
        if status in ("failed", "canceled"):
            raise PaymentProviderError(f"Stripe refund {refund_reference}: {status}")
        # "pending" and "requires_action" end in a refund.updated webhook.
        return ProviderRefund(
            refund_reference, status=SUCCEEDED if status == "succeeded" else PENDING
        )

    def fetch_refund(self, refund: Refund) -> ProviderRefund:
        """GET /v1/refunds/{id}: "succeeded", "failed" / "canceled", or still
        "pending" / "requires_action"."""
        if not refund.provider_reference:
            raise PaymentProviderError(_("Stripe has not named this refund."), code="unknown")
        try:
            answer = client().v1.refunds.retrieve(refund.provider_reference)
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc)) from exc
        status = str(answer.to_dict().get("status") or "")
        return ProviderRefund(
            _field(answer, "id") or refund.provider_reference,
            status=REFUND_STATES.get(status, PENDING),
        )

    # --- Saved cards (Checkout in setup mode) and off-session charges ---------

    can_save_methods = True

    def start_setup(
        self,
        *,
        setup_id: str,
        customer_reference: str,
        email: str,
        return_url: str,
        cancel_url: str,
    ) -> SetupStart:
        try:
            if not customer_reference:
                customer_params: Any = {"metadata": {"leb_setup": setup_id}}
                if email:
                    customer_params["email"] = email
                customer = client().v1.customers.create(
                    customer_params, options={"idempotency_key": f"customer:{setup_id}"}
                )
                customer_reference = str(customer.id)
            params: Any = {
                "mode": "setup",
                "customer": customer_reference,
                "payment_method_types": ["card"],
                "metadata": {"setup": setup_id},
                "success_url": return_url,
                "cancel_url": cancel_url,
            }
            session = client().v1.checkout.sessions.create(
                params, options={"idempotency_key": f"setup:{setup_id}"}
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc.user_message or exc)) from exc
        return SetupStart(redirect_url=_field(session, "url"), reference=_field(session, "id"))

    def finish_setup(self, reference: str) -> SavedCard | None:
        try:
            session: Any = (
                client()
                .v1.checkout.sessions.retrieve(
                    reference, {"expand": ["setup_intent", "setup_intent.payment_method"]}
                )
                .to_dict()
            )
            if session.get("status") != "complete":
                if session.get("status") == "expired":
                    raise PaymentProviderError(
                        _("The card setup expired before it was completed."), code="expired"
                    )
                return None
            intent: Any = session.get("setup_intent")
            if isinstance(intent, str):
                intent = (
                    client()
                    .v1.setup_intents.retrieve(intent, {"expand": ["payment_method"]})
                    .to_dict()
                )
            if intent is None or intent.get("status") != "succeeded":
                return None
            method: Any = intent.get("payment_method")
            if isinstance(method, str):
                method = client().v1.payment_methods.retrieve(method).to_dict()
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc.user_message or exc)) from exc
        card = method.get("card") or {}
        customer = session.get("customer") or method.get("customer") or ""
        return SavedCard(
            customer_reference=str(customer if isinstance(customer, str) else customer.get("id")),
            method_reference=str(method.get("id")),
            brand=str(card.get("brand") or "card"),
            last4=str(card.get("last4") or ""),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
        )

    def charge_saved(
        self,
        attempt: PaymentAttempt,
        *,
        customer_reference: str,
        method_reference: str,
        idempotency_key: str,
    ) -> Outcome:
        params: Any = {
            "amount": attempt.amount,
            "currency": attempt.currency.lower(),
            "customer": customer_reference,
            "payment_method": method_reference,
            "off_session": True,
            "confirm": True,
            "metadata": {"attempt": str(attempt.public_id)},
        }
        attempt.provider_data = {**attempt.provider_data, "off_session": True}
        try:
            intent = client().v1.payment_intents.create(
                params, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as exc:
            failed_intent = exc.error.payment_intent if exc.error else None
            intent_id = str(getattr(failed_intent, "id", "") or "")
            if intent_id:
                attempt.provider_reference = intent_id
                attempt.provider_data = {**attempt.provider_data, "payment_intent": intent_id}
            return Outcome(
                FAILED,
                failure_code=card_error_code(exc),
                failure_message=str(exc.user_message or "")[:255],
                reference=intent_id,
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc.user_message or exc)) from exc
        intent_id = _field(intent, "id")
        attempt.provider_reference = intent_id
        attempt.provider_data = {**attempt.provider_data, "payment_intent": intent_id}
        return intent_outcome(intent.to_dict())

    def detach_saved(self, *, customer_reference: str, method_reference: str) -> None:
        try:
            client().v1.payment_methods.detach(method_reference)
        except (stripe.StripeError, PaymentProviderError):
            # Forgotten on our side already; the provider copy is harmless.
            return

    # --- Settlement -------------------------------------------------------------

    def list_transactions(
        self, day_start: datetime, day_end: datetime
    ) -> list[ProviderTransaction]:
        """Stripe's balance transactions (charges and refunds) created in the
        window, each with the payment it belongs to and, once Stripe has paid
        it out, the payout that carried it."""
        window: Any = {"gte": int(day_start.timestamp()), "lt": int(day_end.timestamp())}
        try:
            stripe_client = client()
            rows = [
                row.to_dict()
                for row in stripe_client.v1.balance_transactions.list(
                    {"created": window, "limit": 100, "expand": ["data.source"]}
                ).auto_paging_iter()
            ]
            payout_of = _payouts_of(stripe_client, day_start, day_end) if rows else {}
        except stripe.StripeError as exc:
            raise PaymentProviderError(str(exc.user_message or exc)) from exc
        found = []
        for row in rows:
            record = _balance_transaction(row, payout_of.get(str(row.get("id") or ""), ""))
            if record is not None:
                found.append(record)
        return found


# Stripe pays a day's charges out some days later: payouts created this long
# after the day are searched for the ones that carried its transactions.
PAYOUT_SEARCH_DAYS = 14
CAPTURE_TYPES = {"charge", "payment"}
REFUND_TYPES = {"refund", "payment_refund"}


def _payouts_of(
    stripe_client: stripe.StripeClient, day_start: datetime, day_end: datetime
) -> dict[str, str]:
    """balance transaction id -> the payout that carried it, for payouts
    created from the day on."""
    created: Any = {
        "gte": int(day_start.timestamp()),
        "lt": int((day_end + timedelta(days=PAYOUT_SEARCH_DAYS)).timestamp()),
    }
    payout_of: dict[str, str] = {}
    for payout in stripe_client.v1.payouts.list(
        {"created": created, "limit": 100}
    ).auto_paging_iter():
        payout_id = str(payout.id or "")
        for row in stripe_client.v1.balance_transactions.list(
            {"payout": payout_id, "limit": 100}
        ).auto_paging_iter():
            payout_of[str(row.id or "")] = payout_id
    return payout_of


def _id_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _balance_transaction(row: dict[str, Any], payout_id: str) -> ProviderTransaction | None:
    """A capture or refund from one balance transaction; None for the other
    kinds (payouts, fees, adjustments), which are not payments of an order."""
    kind = str(row.get("type") or "")
    if kind not in CAPTURE_TYPES | REFUND_TYPES:
        return None
    source = row.get("source")
    source = source if isinstance(source, dict) else {"id": str(source or "")}
    metadata = source.get("metadata") or {}
    # The payment's own amount and currency, not the balance's: a charge in
    # another currency is converted before it reaches the balance.
    amount = source.get("amount", row.get("amount"))
    currency = source.get("currency") or row.get("currency") or ""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise PaymentProviderError(
            f"Stripe balance transaction {row.get('id')} has no amount", code="bad_answer"
        )
    return ProviderTransaction(
        transaction_id=str(row.get("id") or ""),
        kind=CAPTURE if kind in CAPTURE_TYPES else REFUND,
        amount=abs(amount),
        currency=str(currency).upper(),
        occurred_at=datetime.fromtimestamp(int(row.get("created") or 0), tz=UTC),
        reference=_id_of(source.get("payment_intent")) or _id_of(source.get("charge")),
        attempt_id=str(metadata.get("attempt") or "") if isinstance(metadata, dict) else "",
        fee=abs(int(row.get("fee") or 0)),
        payout_id=payout_id,
        pending=row.get("status") == "pending",
    )


def card_error_code(exc: stripe.CardError) -> str:
    """One of leb's failure codes for a refused off-session charge."""
    code = str(exc.code or "")
    decline = str(getattr(exc.error, "decline_code", "") or "") if exc.error else ""
    if code == "authentication_required" or decline == "authentication_required":
        return "authentication_required"
    if decline == "insufficient_funds" or code == "insufficient_funds":
        return "insufficient_funds"
    for reason in ("expired_card", "incorrect_cvc", "processing_error"):
        if reason in (code, decline):
            return reason
    return "card_declined"


def intent_outcome(intent: Any) -> Outcome:
    data = {"payment_intent": intent.get("id")}
    status = intent.get("status")
    if status == "succeeded":
        return Outcome(
            SUCCEEDED,
            amount=intent.get("amount_received") or intent.get("amount"),
            currency=str(intent.get("currency") or "").upper(),
            reference=str(intent.get("id") or ""),
            data=data,
        )
    if status == "requires_action":
        return Outcome(FAILED, failure_code="authentication_required", data=data)
    if status in ("requires_payment_method", "canceled"):
        return Outcome(FAILED, failure_code="card_declined", data=data)
    return Outcome(PENDING, data=data)


def _event_outcome(kind: str, session: Any) -> Outcome | None:
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        # "completed" with payment_status "unpaid" is a delayed method still in flight.
        return session_outcome(session)
    if kind == "checkout.session.async_payment_failed":
        return Outcome(FAILED, failure_code="async_payment_failed")
    if kind == "checkout.session.expired":
        return Outcome(CANCELLED, failure_code="expired")
    return None


REFUND_STATES = {"succeeded": SUCCEEDED, "failed": FAILED, "canceled": FAILED}


def _refund_notice(refund: Any) -> RefundNotice | None:
    if not isinstance(refund, dict):
        return None
    metadata: dict[str, Any] = refund.get("metadata") or {}
    if not isinstance(metadata, dict):
        metadata = {}
    amount = refund.get("amount")
    return RefundNotice(
        REFUND_STATES.get(str(refund.get("status") or ""), PENDING),
        reference=str(refund.get("id") or "")[:255],
        refund_id=str(metadata.get("refund") or "")[:64],
        amount=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=str(refund.get("currency") or "").upper(),
    )


def _refund_notices(kind: str, obj: Any) -> tuple[RefundNotice, ...]:
    """refund.created / refund.updated / refund.failed carry one refund;
    charge.refunded a charge, with its refunds listed when the API version
    includes them, else only the total refunded so far."""
    if kind in ("refund.created", "refund.updated", "refund.failed"):
        notice = _refund_notice(obj)
        return (notice,) if notice is not None else ()
    if kind != "charge.refunded":
        return ()
    listed: Any = obj.get("refunds") or {}
    items: Any = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(items, list):
        items = []
    notices = tuple(n for n in (_refund_notice(item) for item in items) if n is not None)
    if notices:
        return notices
    total = obj.get("amount_refunded")
    if not isinstance(total, int) or isinstance(total, bool):
        return ()
    return (RefundNotice(SUCCEEDED, total=total, currency=str(obj.get("currency") or "").upper()),)
