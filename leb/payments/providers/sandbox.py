"""The built-in sandbox gateway: a hosted checkout with test cards, signed
webhooks delivered asynchronously, and a status API, so the whole payment flow
runs locally exactly as it would against a real provider."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from leb.common import clock

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

SIGNATURE_HEADER = "Leb-Sandbox-Signature"
TOLERANCE_SECONDS = 300
CHALLENGE = "challenge"

# Test card numbers and what the sandbox does with them.
TEST_CARDS = {
    "4242424242424242": SUCCEEDED,
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000002500003155": CHALLENGE,
    # Stripe's numbers for the same declines, so both behave alike in tests.
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}


def classify_card(number: str) -> str:
    """SUCCEEDED, CHALLENGE or a failure code for a (valid) card number."""
    return TEST_CARDS.get(number, "card_not_supported")


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


def vault_card(
    number: str,
    exp_month: int,
    exp_year: int,
    *,
    customer_reference: str,
    setup_id: str | None = None,
) -> SavedCard:
    """Tokenise a test card: what the sandbox's hosted "save a card" page does
    on submit. The number is reduced to its behaviour, brand and last four
    digits here and then forgotten."""
    from ..models import SandboxVaultedCard

    behaviour = classify_card(number)
    if behaviour == "card_not_supported":
        raise PaymentProviderError(
            _("This card is not supported in the sandbox."), code="card_not_supported"
        )
    fields = {
        "behaviour": behaviour,
        "brand": card_brand(number),
        "last4": number[-4:],
        "exp_month": exp_month,
        "exp_year": exp_year,
        "completed_at": clock.now(),
    }
    with transaction.atomic():
        if setup_id:
            card = SandboxVaultedCard.objects.select_for_update().get(public_id=setup_id)
            if card.completed_at is None:
                for name, value in fields.items():
                    setattr(card, name, value)
                card.save()
        else:
            card = SandboxVaultedCard.objects.create(
                customer_reference=customer_reference, created_at=clock.now(), **fields
            )
    return _saved(card)


def _saved(card: Any) -> SavedCard:
    return SavedCard(
        customer_reference=card.customer_reference,
        method_reference=card.token,
        brand=card.brand,
        last4=card.last4,
        exp_month=int(card.exp_month or 0),
        exp_year=int(card.exp_year or 0),
    )


def _vaulted(token: str) -> Any:
    from ..models import SandboxVaultedCard

    hex_id = token.removeprefix("sbxpm_")
    try:
        public_id = uuid.UUID(hex=hex_id)
    except ValueError:
        return None
    return SandboxVaultedCard.objects.filter(public_id=public_id).first()


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


def capture_at_gateway(attempt: PaymentAttempt, at: datetime) -> PaymentAttempt:
    """Book a capture at the gateway at `at` without notifying anyone: the
    gateway's record of a payment that leb settles itself (the demo's history).
    Gives the attempt its sandbox reference; the caller saves nothing else."""
    from ..models import PaymentAttempt

    with transaction.atomic():
        locked = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        locked.provider_reference = locked.provider_reference or f"sbx_{locked.public_id.hex}"
        if not gateway_state(locked):
            state = {"state": SUCCEEDED, "code": "", "at": int(at.timestamp())}
            locked.provider_data = {**locked.provider_data, "gateway": state}
        locked.save(update_fields=["provider_reference", "provider_data"])
    attempt.provider_reference = locked.provider_reference
    attempt.provider_data = locked.provider_data
    return attempt


def refund_at_gateway(
    attempt: PaymentAttempt, amount: int, at: datetime, *, idempotency_key: str = "refund"
) -> str:
    """Book a refund of `amount` at the gateway at `at` without notifying
    anyone, once per idempotency key (a repeat returns the first refund): the
    gateway's record of a refund leb settles itself (the demo's history), read
    by the daily settlement like the refunds `SandboxProvider.refund` books."""
    from ..models import PaymentAttempt

    with transaction.atomic():
        locked = PaymentAttempt.objects.select_for_update().get(pk=attempt.pk)
        refunds = dict(locked.provider_data.get("gateway_refunds") or {})
        if idempotency_key not in refunds:
            refunds[idempotency_key] = {
                "id": f"sbx_refund_{uuid.uuid4().hex}",
                "amount": amount,
                "state": SUCCEEDED,
                "at": int(at.timestamp()),
            }
            locked.provider_data = {**locked.provider_data, "gateway_refunds": refunds}
            locked.save(update_fields=["provider_data"])
    attempt.provider_data = locked.provider_data
    return str(refunds[idempotency_key]["id"])


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
        refunds: tuple[RefundNotice, ...] = ()
        outcome: Outcome | None = None
        if kind in ("refund.succeeded", "refund.failed"):
            refunds = (
                RefundNotice(
                    SUCCEEDED if kind == "refund.succeeded" else FAILED,
                    reference=str(data.get("reference", ""))[:255],
                    refund_id=str(data.get("refund", ""))[:64],
                    amount=amount,
                    currency=currency,
                ),
            )
        elif kind == "payment.succeeded":
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
            refunds=refunds,
        )

    def fetch_status(self, attempt: PaymentAttempt) -> Outcome:
        return _outcome_for(attempt, gateway_state(attempt))

    def refund(
        self, attempt: PaymentAttempt, amount: int, *, idempotency_key: str, refund_id: str
    ) -> ProviderRefund:
        """Refund like a gateway: once per idempotency key (a repeat gets the
        first answer), never more in total than was captured. What happens is
        LEB_PAYMENTS_SANDBOX_REFUNDS: "instant" (confirmed in the answer),
        "webhook" (pending, confirmed by a signed `refund.succeeded` webhook)
        or "unavailable" (the gateway does not answer: nothing is refunded)."""
        from ..models import PaymentAttempt as Attempt
        from ..tasks import deliver_sandbox_webhook

        mode = str(getattr(settings, "PAYMENTS_SANDBOX_REFUNDS", "instant") or "instant")
        if mode == "unavailable":
            raise PaymentProviderError(_("The sandbox gateway did not answer."), code="unreachable")
        with transaction.atomic():
            locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
            refunds = dict(locked.provider_data.get("gateway_refunds") or {})
            known = refunds.get(idempotency_key)
            if known is not None:
                return ProviderRefund(known["id"], status=known["state"])
            if sum(int(r["amount"]) for r in refunds.values()) + amount > locked.amount:
                raise PaymentProviderError(
                    _("The refund is larger than what is left of the payment."),
                    code="amount_too_large",
                )
            now = clock.now()
            reference = f"sbx_refund_{uuid.uuid4().hex}"
            state = PENDING if mode == "webhook" else SUCCEEDED
            refunds[idempotency_key] = {
                "id": reference,
                "amount": amount,
                "state": state,
                "at": int(now.timestamp()),
            }
            locked.provider_data = {**locked.provider_data, "gateway_refunds": refunds}
            locked.save(update_fields=["provider_data"])
            if state == PENDING:
                body = {
                    "id": f"evt_sbx_{uuid.uuid4().hex}",
                    "type": "refund.succeeded",
                    "attempt": str(locked.public_id),
                    "refund": refund_id,
                    "reference": reference,
                    "amount": amount,
                    "currency": locked.currency,
                    "created": int(now.timestamp()),
                }
                deliver_sandbox_webhook.enqueue(json.dumps(body, separators=(",", ":")))
        return ProviderRefund(reference, status=state)

    def fetch_refund(self, refund: Refund) -> ProviderRefund:
        """The gateway's record of the refund, under its idempotency key. The
        sandbox gateway completes every refund it accepted (only the webhook
        saying so can be late or lost), so a pending record has succeeded; one
        the gateway reversed is failed; no record means it never arrived."""
        from ..models import PaymentAttempt as Attempt

        attempt = Attempt.objects.get(pk=refund.attempt_id)
        known = (attempt.provider_data.get("gateway_refunds") or {}).get(refund.idempotency_key)
        if known is None:
            return ProviderRefund("", status=FAILED)
        state = FAILED if known.get("state") == FAILED else SUCCEEDED
        return ProviderRefund(str(known.get("id") or ""), status=state)

    def list_transactions(
        self, day_start: datetime, day_end: datetime
    ) -> list[ProviderTransaction]:
        """The gateway's captures and refunds booked in the window, read from
        its own records on the attempts (the sandbox charges no fee)."""
        from ..models import PaymentAttempt as Attempt

        start, end = int(day_start.timestamp()), int(day_end.timestamp())
        # Refunds are keyed by their idempotency key, which a JSON lookup
        # cannot range over: attempts with any refund are read and filtered
        # here (few, and only the sandbox's).
        attempts = Attempt.objects.filter(provider=self.name).filter(
            Q(provider_data__gateway__state=SUCCEEDED)
            & (
                Q(provider_data__gateway__at__gte=start, provider_data__gateway__at__lt=end)
                | Q(provider_data__has_key="gateway_refunds")
            )
        )
        found: list[ProviderTransaction] = []
        for attempt in attempts.order_by("pk"):
            state = gateway_state(attempt)
            reference = attempt.provider_reference or f"sbx_{attempt.public_id.hex}"
            if start <= int(state.get("at") or 0) < end:
                found.append(
                    ProviderTransaction(
                        transaction_id=f"sbx_ch_{attempt.public_id.hex}",
                        kind=CAPTURE,
                        amount=int(state.get("amount") or attempt.amount),
                        currency=attempt.currency,
                        occurred_at=datetime.fromtimestamp(int(state["at"]), tz=UTC),
                        reference=reference,
                        attempt_id=str(attempt.public_id),
                    )
                )
            refunds = (attempt.provider_data.get("gateway_refunds") or {}).values()
            for refund in refunds:
                if not start <= int(refund.get("at") or 0) < end:
                    continue
                found.append(
                    ProviderTransaction(
                        transaction_id=str(refund.get("id") or ""),
                        kind=REFUND,
                        amount=int(refund.get("amount") or 0),
                        currency=attempt.currency,
                        occurred_at=datetime.fromtimestamp(int(refund["at"]), tz=UTC),
                        reference=reference,
                        attempt_id=str(attempt.public_id),
                    )
                )
        return sorted(found, key=lambda record: (record.occurred_at, record.transaction_id))

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
        from ..models import SandboxVaultedCard

        card = SandboxVaultedCard.objects.create(
            customer_reference=customer_reference,
            return_url=return_url,
            cancel_url=cancel_url,
            created_at=clock.now(),
        )
        return SetupStart(
            redirect_url=reverse("payments:sandbox_setup", args=[card.public_id]),
            reference=card.token,
        )

    def finish_setup(self, reference: str) -> SavedCard | None:
        card = _vaulted(reference)
        if card is None:
            raise PaymentProviderError(_("The sandbox has no such saved card."), code="unknown")
        if card.completed_at is None:
            return None
        return _saved(card)

    def charge_saved(
        self,
        attempt: PaymentAttempt,
        *,
        customer_reference: str,
        method_reference: str,
        idempotency_key: str,
    ) -> Outcome:
        """Charge a vaulted test card at once: 4242… succeeds, …0002 is
        declined, …9995 has insufficient funds, and a card that needs 3-D
        Secure cannot be charged without the cardholder present."""
        from ..models import PaymentAttempt as Attempt

        with transaction.atomic():
            locked = Attempt.objects.select_for_update().get(pk=attempt.pk)
            state = gateway_state(locked)
            if not state:
                # Decided once per attempt, like the idempotency key of a real gateway.
                card = _vaulted(method_reference)
                if card is None or card.customer_reference != customer_reference:
                    state = {"state": FAILED, "code": "card_declined"}
                elif card.behaviour == SUCCEEDED:
                    state = {"state": SUCCEEDED, "code": ""}
                elif card.behaviour == CHALLENGE:
                    state = {"state": FAILED, "code": "authentication_required"}
                else:
                    state = {"state": FAILED, "code": card.behaviour}
                state["at"] = int(clock.now().timestamp())
                state["idempotency_key"] = idempotency_key
                locked.provider_reference = f"sbx_{locked.public_id.hex}"
                locked.provider_data = {
                    **locked.provider_data,
                    "gateway": state,
                    "off_session": True,
                }
                locked.save(update_fields=["provider_reference", "provider_data"])
        attempt.provider_reference = locked.provider_reference
        attempt.provider_data = locked.provider_data
        return _outcome_for(locked, state)


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
