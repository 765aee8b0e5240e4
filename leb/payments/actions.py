"""Every write of the payments channel. `settle` is the single place where a
provider's word becomes a paid and fulfilled (or failed) order: the webhook,
the return page and the status poll all end here, in any order, any number of
times."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.formatting import format_money
from leb.common.money import sets_making
from leb.common.transactions import one_transaction, outside_transaction
from leb.topups.actions import (
    OrderError,
    do_fail_order,
    do_fulfil_order,
    do_mark_refund_due,
    do_mark_refund_returned,
    do_pay_and_fulfil,
    do_refund_order_part,
)
from leb.topups.actions import do_refund_order as _do_refund_order
from leb.topups.models import OrderStatus, TopUpOrder

from .models import (
    OPEN_STATUSES,
    AttemptStatus,
    PaymentAttempt,
    ProviderEvent,
    Refund,
    RefundStatus,
)
from .providers.base import (
    CANCELLED,
    SUCCEEDED,
    Outcome,
    PaymentProvider,
    PaymentProviderError,
    RefundNotice,
    WebhookEvent,
    get_provider,
)
from .signals import refund_settled

logger = logging.getLogger(__name__)

# Why a payment did not go through, by failure code: shown to the payer.
FAILURE_MESSAGES = {
    "card_declined": _("Your card was declined. Try another card or payment method."),
    "insufficient_funds": _("Your card has insufficient funds."),
    "card_not_supported": _("This card is not supported in the sandbox."),
    "authentication_failed": _("The card security check (3-D Secure) failed."),
    "authentication_required": _(
        "This card needs you to confirm each payment (3-D Secure), so it cannot be "
        "charged automatically. Top up by hand or save another card."
    ),
    "expired_card": _("This card has expired."),
    "incorrect_cvc": _("The card's security code (CVC) is incorrect. Check it and try again."),
    "processing_error": _(
        "The card could not be charged because of a processing error. Try again in a moment."
    ),
    "cancelled": _("The payment was cancelled."),
    "expired": _("The payment session expired before it was completed."),
    "amount_mismatch": _(
        "The amount paid does not match the order, so no top-up was made. "
        "The payment will be refunded."
    ),
    "paid_twice": _("This order was already paid; this second payment will be refunded."),
    "provider_unavailable": _("The payment service is not available right now. Try again later."),
}
DEFAULT_FAILURE = _("The payment did not go through.")

# What providers call the same reasons, as leb's failure codes. Anything not
# listed here or in FAILURE_MESSAGES gets DEFAULT_FAILURE: a provider's own
# wording never reaches the payer.
FAILURE_ALIASES = {
    # Stripe decline codes (https://docs.stripe.com/declines/codes)
    "generic_decline": "card_declined",
    "do_not_honor": "card_declined",
    "lost_card": "card_declined",
    "stolen_card": "card_declined",
    "pickup_card": "card_declined",
    "restricted_card": "card_declined",
    "fraudulent": "card_declined",
    "card_velocity_exceeded": "card_declined",
    "transaction_not_allowed": "card_declined",
    "invalid_cvc": "incorrect_cvc",
    "try_again_later": "processing_error",
    "issuer_not_available": "processing_error",
    # PayPal and leb's own generic codes
    "declined": "card_declined",
    "instrument_declined": "card_declined",
    "transaction_refused": "card_declined",
    "payer_action_required": "authentication_required",
    "voided": "cancelled",
}

# An off-session charge whose answer never came is marked so in provider_data.
UNCONFIRMED = "unconfirmed"
UNCONFIRMED_WINDOW = timedelta(hours=23)
# Provider errors raised before anything was sent: the card was not charged.
NEVER_SENT = frozenset({"not_configured", "not_supported"})

# settle() results, recorded on ProviderEvent.outcome.
FULFILLED = "fulfilled"
DUPLICATE = "duplicate"
LATE_FAILURE_IGNORED = "late_failure_ignored"
FAILED = "failed"
PENDING = "pending"
AMOUNT_MISMATCH = "amount_mismatch"
PAID_TWICE = "paid_twice"
UNKNOWN_ATTEMPT = "unknown_attempt"
IGNORED = "ignored"


class PaymentError(Exception):
    """A refused payment operation; the message is for the person who asked."""

    def __init__(self, message: object, *, code: str) -> None:
        super().__init__(str(message))
        self.message = message
        self.code = code


def failure_code(raw: str) -> str:
    """leb's failure code for what a provider reported ("" when unknown)."""
    code = (raw or "").strip().lower()
    code = FAILURE_ALIASES.get(code, code)
    return code if code in FAILURE_MESSAGES else ""


def failure_message(code: str, fallback: str = "") -> str:
    """The payer's translated reason for a failure code. `fallback` is for an
    unknown code and must itself be leb's wording (e.g. an order's recorded
    reason), never a provider's message."""
    known = failure_code(code)
    if known:
        return str(FAILURE_MESSAGES[known])
    return fallback or str(DEFAULT_FAILURE)


def absolute_url(path: str) -> str:
    """`path` on the configured site address: the one base of every URL a
    provider is given (return, cancel, webhook), never a request's Host."""
    return str(settings.SITE_URL).rstrip("/") + path


def _provider(name: str) -> PaymentProvider:
    try:
        return get_provider(name)
    except LookupError as exc:
        raise PaymentError(
            _("This payment method is not available."), code="provider_unknown"
        ) from exc


@outside_transaction
def do_start_attempt(
    order: TopUpOrder, provider_name: str, *, now: datetime | None = None
) -> PaymentAttempt:
    """Open a checkout at the provider for an unpaid order. The amount and
    currency come from the order, nowhere else."""
    now = now or clock.now()
    provider = _provider(provider_name)
    with transaction.atomic():
        order = TopUpOrder.objects.select_for_update().get(pk=order.pk)
        if order.status != OrderStatus.PENDING_PAYMENT or order.expires_at <= now:
            raise PaymentError(
                _("This order can no longer be paid. Start a new top-up."), code="order_closed"
            )
        attempt = PaymentAttempt.objects.create(
            order=order,
            provider=provider.name,
            amount=order.price,
            currency=order.currency,
            created_at=now,
            updated_at=now,
        )
    return_url = absolute_url(reverse("payments:return", args=[attempt.public_id]))
    cancel_url = return_url + "?cancelled=1"
    # Network I/O happens outside any transaction: no row stays locked meanwhile.
    try:
        attempt.checkout_url = provider.start_checkout(order, attempt, return_url, cancel_url)
    except PaymentProviderError as exc:
        logger.warning("%s checkout for attempt %s failed: %s", provider.name, attempt.pk, exc)
        attempt.status = AttemptStatus.FAILED
        attempt.failure_code = "provider_unavailable"
        attempt.failure_message = str(exc)[:255]
        attempt.updated_at = clock.now()
        attempt.save()
        raise PaymentError(
            FAILURE_MESSAGES["provider_unavailable"], code="provider_unavailable"
        ) from exc
    attempt.status = AttemptStatus.PENDING
    attempt.updated_at = clock.now()
    attempt.save()
    return attempt


@outside_transaction
def do_charge_off_session(
    order: TopUpOrder,
    *,
    provider_name: str,
    saved_method_id: int,
    customer_reference: str,
    method_reference: str,
    now: datetime | None = None,
) -> PaymentAttempt:
    """Charge a saved method for an unpaid order while its owner is away:
    one attempt per order (a retry reuses it), the provider call outside any
    transaction under a key that makes a retry safe, then settle(), which
    marks the order paid. The caller fulfils it."""
    now = now or clock.now()
    provider = _provider(provider_name)
    with transaction.atomic():
        order = TopUpOrder.objects.select_for_update(of=("self",)).get(pk=order.pk)
        attempt = order.payment_attempts.order_by("-created_at", "-id").first()
        if attempt is None:
            attempt = PaymentAttempt.objects.create(
                order=order,
                provider=provider.name,
                amount=order.price,
                currency=order.currency,
                status=AttemptStatus.PENDING,
                provider_data={"saved_method": saved_method_id, "off_session": True},
                created_at=now,
                updated_at=now,
            )
    if attempt.is_open:
        attempt.provider_data = {k: v for k, v in attempt.provider_data.items() if k != UNCONFIRMED}
        try:
            outcome = provider.charge_saved(
                attempt,
                customer_reference=customer_reference,
                method_reference=method_reference,
                idempotency_key=f"offsession:{attempt.public_id}",
            )
        except PaymentProviderError as exc:
            logger.warning("off-session charge of attempt %s failed: %s", attempt.pk, exc)
            if exc.code in NEVER_SENT:
                outcome = Outcome(FAILED, failure_code="provider_unavailable")
            else:
                # A timeout, a dropped connection, a 5xx or an unreadable answer:
                # the card may have been charged. The attempt stays open, and
                # asking again under the same idempotency key (the same attempt)
                # gets the provider's first answer, so it is charged at most once
                # and a charge that went through is never lost.
                attempt.provider_data = {**attempt.provider_data, UNCONFIRMED: True}
                outcome = Outcome(PENDING)
        PaymentAttempt.objects.filter(pk=attempt.pk).update(
            provider_reference=attempt.provider_reference,
            provider_data=attempt.provider_data,
            updated_at=now,
        )
        settle(attempt, outcome, now=now)
    return attempt


def unconfirmed_charges(*, now: datetime | None = None) -> list[PaymentAttempt]:
    """Off-session charges whose answer never came, young enough to ask again
    under their idempotency key (providers keep a key for a day)."""
    now = now or clock.now()
    return list(
        PaymentAttempt.objects.filter(
            status__in=OPEN_STATUSES,
            created_at__gt=now - UNCONFIRMED_WINDOW,
            provider_data__unconfirmed=True,
        )
        .select_related("order")
        .order_by("created_at", "pk")
    )


def _lock_attempt(attempt_id: int) -> PaymentAttempt:
    return PaymentAttempt.objects.select_for_update(of=("self",)).get(pk=attempt_id)


def _english(code: str) -> str:
    # The order keeps one reason for the books, whatever language the payer used.
    with translation.override("en"):
        return failure_message(code)[:200]


def _staff_record(code: str, provider_message: str) -> str:
    """The attempt's reason for staff: leb's wording plus what the provider said."""
    text = _english(code)
    if provider_message:
        text = f"{text} (provider: {provider_message})"
    return text[:255]


def settle(attempt: PaymentAttempt, outcome: Outcome, *, now: datetime | None = None) -> str:
    """Apply what the provider says about `attempt`. Idempotent: a replay, a
    late failure after a success, or a second path arriving second changes
    nothing. Returns what happened (one of the module's result constants)."""
    now = now or clock.now()
    if not outcome.is_final:
        PaymentAttempt.objects.filter(pk=attempt.pk, status=AttemptStatus.CREATED).update(
            status=AttemptStatus.PENDING, updated_at=now
        )
        return PENDING
    with transaction.atomic():
        # Lock order: attempt, then (inside the order actions) order, then line.
        attempt = _lock_attempt(attempt.pk)
        if outcome.status == SUCCEEDED:
            return _settle_success(attempt, outcome, now)
        return _settle_failure(attempt, outcome, now)


def _settle_success(attempt: PaymentAttempt, outcome: Outcome, now: datetime) -> str:
    order = TopUpOrder.objects.get(pk=attempt.order_id)
    if attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.REFUNDED):
        if attempt.status == AttemptStatus.SUCCEEDED and order.status == OrderStatus.PAID:
            do_fulfil_order(order, now=now)  # finish what a crash interrupted
        return DUPLICATE
    if (
        outcome.amount != attempt.amount
        or outcome.currency.upper() != attempt.currency
        or (attempt.amount, attempt.currency) != (order.price, order.currency)
    ):
        return _refuse(attempt, outcome, AttemptStatus.FAILED, AMOUNT_MISMATCH, now)
    reference = attempt.provider_reference or str(attempt.public_id)
    try:
        do_pay_and_fulfil(
            order,
            amount=attempt.amount,
            currency=attempt.currency,
            provider=attempt.provider,
            reference=reference,
            now=now,
        )
    except OrderError as exc:
        if exc.code == "paid_twice":
            return _refuse(attempt, outcome, AttemptStatus.SUCCEEDED, PAID_TWICE, now)
        raise
    attempt.status = AttemptStatus.SUCCEEDED
    attempt.failure_code = ""
    attempt.failure_message = ""
    attempt.provider_data = {**attempt.provider_data, **outcome.data}
    attempt.updated_at = now
    attempt.save(
        update_fields=["status", "failure_code", "failure_message", "provider_data", "updated_at"]
    )
    return FULFILLED


def _refuse(
    attempt: PaymentAttempt, outcome: Outcome, status: str, code: str, now: datetime
) -> str:
    """Money arrived that must not become a top-up: keep the facts for finance."""
    attempt.status = status
    attempt.failure_code = code
    attempt.failure_message = _english(code)
    attempt.provider_data = {**attempt.provider_data, **outcome.data}
    attempt.updated_at = now
    attempt.save(
        update_fields=["status", "failure_code", "failure_message", "provider_data", "updated_at"]
    )
    logger.error(
        "refused %s payment for attempt %s: %s (got %s %s, expected %s %s)",
        attempt.provider,
        attempt.public_id,
        code,
        outcome.amount,
        outcome.currency,
        attempt.amount,
        attempt.currency,
    )
    record(
        f"payments:{attempt.provider}",
        f"payment.{code}",
        f"order:{attempt.order_id}",
        {
            "attempt": str(attempt.public_id),
            "paid_amount": outcome.amount,
            "paid_currency": outcome.currency,
            "expected_amount": attempt.amount,
            "expected_currency": attempt.currency,
        },
        now=now,
    )
    return code


def _settle_failure(attempt: PaymentAttempt, outcome: Outcome, now: datetime) -> str:
    if attempt.status in (AttemptStatus.SUCCEEDED, AttemptStatus.REFUNDED):
        # Providers deliver in any order: a failure never undoes a success.
        return LATE_FAILURE_IGNORED
    if attempt.status in (AttemptStatus.FAILED, AttemptStatus.CANCELLED):
        return DUPLICATE
    code = outcome.failure_code or ("cancelled" if outcome.status == CANCELLED else "declined")
    attempt.status = (
        AttemptStatus.CANCELLED if outcome.status == CANCELLED else AttemptStatus.FAILED
    )
    attempt.failure_code = code[:50]
    attempt.failure_message = _staff_record(code, outcome.failure_message)
    attempt.updated_at = now
    attempt.save(update_fields=["status", "failure_code", "failure_message", "updated_at"])
    others_open = (
        PaymentAttempt.objects.filter(order_id=attempt.order_id, status__in=OPEN_STATUSES)
        .exclude(pk=attempt.pk)
        .exists()
    )
    order = TopUpOrder.objects.get(pk=attempt.order_id)
    if order.status == OrderStatus.PENDING_PAYMENT and not others_open:
        # Paid or closed meanwhile: nothing left to fail.
        with contextlib.suppress(OrderError):
            # The order's reason is shown to the payer (support pages): leb's
            # wording only, the provider's stays on the attempt.
            do_fail_order(order, reason=_english(code), now=now)
    return FAILED


# Refund results, recorded on ProviderEvent.outcome for refund webhooks.
REFUND_CONFIRMED = "refund_confirmed"
REFUND_FAILED = "refund_failed"
REFUND_PENDING = "refund_pending"
UNKNOWN_REFUND = "unknown_refund"


def refunded_so_far(attempt: PaymentAttempt) -> int:
    """Everything asked back on `attempt`: requested, confirmed, and failed
    ones too (their books are reversed and they will be asked again)."""
    total = attempt.refunds.aggregate(total=Sum("amount"))["total"]
    return int(total or 0)


def refundable(attempt: PaymentAttempt) -> int:
    """What is left of the captured amount to refund."""
    if attempt.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.REFUNDED):
        return 0
    return max(attempt.amount - refunded_so_far(attempt), 0)


def refunded_attempt(order: TopUpOrder) -> PaymentAttempt | None:
    """The payment that made `order` a top-up, the one a refund gives back."""
    return (
        PaymentAttempt.objects.filter(
            order=order, status__in=(AttemptStatus.SUCCEEDED, AttemptStatus.REFUNDED)
        )
        .exclude(failure_code=PAID_TWICE)
        .order_by("pk")
        .first()
    )


@outside_transaction
def do_request_refund(
    attempt: PaymentAttempt,
    *,
    amount: int | None = None,
    reason: str,
    actor: str,
    refusal: Callable[[int], str] | None = None,
    now: datetime | None = None,
) -> Refund:
    """Give `amount` (all that is left when None) of a successful payment back
    to the payment method it came from. One transaction, with the attempt
    row locked so refunds racing on one payment can never add up to more than
    was captured, writes the Refund and reverses the books: in proportion for
    a partial refund (`do_refund_order_part`); the order's whole reversal
    and validity rule (`do_refund_order`) for the refund that brings the total
    to the captured amount. Then the provider is asked, outside any
    transaction. Its confirmation (now, or by webhook later) clears the
    order's `refund_due`; a failure leaves the Refund failed, the order due,
    and `do_retry_refund` asks again under the same idempotency key.

    `refusal`, when given, is the caller's limit on the payment's refunds:
    called under the attempt's lock with what they would add up to with this
    one (so two refunds at the same moment are counted together), it returns
    why that total is refused ("" to go on) and nothing is written."""
    now = now or clock.now()
    # A provider that is no longer enabled could never be asked: refuse before
    # the books say anything is owed.
    _provider(attempt.provider)
    with transaction.atomic():
        attempt = _lock_attempt(attempt.pk)
        if attempt.status == AttemptStatus.REFUNDED:
            raise PaymentError(
                _("This payment has already been refunded in full."), code="refunded"
            )
        if attempt.status != AttemptStatus.SUCCEEDED:
            raise PaymentError(
                _("Only a successful payment can be refunded."), code="not_succeeded"
            )
        taken = refunded_so_far(attempt)
        left = attempt.amount - taken
        amount = left if amount is None else amount
        if amount <= 0:
            raise PaymentError(
                _("Enter a refund amount greater than zero."), code="amount_not_positive"
            )
        if amount > left:
            raise PaymentError(
                _("At most %(left)s of this payment can still be refunded.")
                % {"left": format_money(left, attempt.currency)},
                code="over_refund",
            )
        refused = refusal(taken + amount) if refusal is not None else ""
        if refused:
            raise PaymentError(refused, code="limit")
        public_id = uuid.uuid4()
        refund = Refund.objects.create(
            public_id=public_id,
            attempt=attempt,
            amount=amount,
            currency=attempt.currency,
            idempotency_key=f"refund:{public_id}",
            reason=reason[:200],
            actor=actor[:100],
            created_at=now,
            updated_at=now,
        )
        if attempt.failure_code != PAID_TWICE:
            # A second payment of an already paid order never became a top-up.
            order = TopUpOrder.objects.get(pk=attempt.order_id)
            try:
                if taken + amount == attempt.amount:
                    _do_refund_order(
                        order,
                        reason=reason,
                        actor=actor,
                        now=now,
                        completes_partial_refunds=True,
                    )
                else:
                    do_refund_order_part(
                        order,
                        amount=amount,
                        key=str(public_id),
                        reason=reason,
                        actor=actor,
                        now=now,
                    )
            except OrderError as exc:
                raise PaymentError(exc.messages[0], code=exc.code or "refused") from exc
        record(
            actor,
            AuditAction.PAYMENT_REFUND_REQUEST,
            f"order:{attempt.order_id}",
            {
                "attempt": str(attempt.public_id),
                "refund": str(public_id),
                "amount": amount,
                "currency": attempt.currency,
                "refunded_before": taken,
                "reason": reason,
            },
            now=now,
        )
    return _send_refund(refund, actor=actor, now=now)


# Stripe keeps an idempotency key for 24 hours: a retry within this window
# gets the first refund back instead of a second one.
REFUND_RETRY_WINDOW = timedelta(hours=23)


@outside_transaction
def do_retry_refund(refund: Refund, *, actor: str, now: datetime | None = None) -> Refund:
    """Ask the provider again for a refund that failed, under its first
    idempotency key: a provider that did refund the first time answers with
    that refund instead of making a second one. The books are not touched."""
    now = now or clock.now()
    with transaction.atomic():
        _lock_attempt(refund.attempt_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status != RefundStatus.FAILED:
            raise PaymentError(_("Only a failed refund can be asked again."), code="not_retryable")
        if now - refund.created_at > REFUND_RETRY_WINDOW:
            # A refund that timed out may have been made. Past this, Stripe no
            # longer knows its idempotency key, so asking again could pay twice.
            raise PaymentError(
                _(
                    "This refund was first asked for more than 23 hours ago, so the provider "
                    "may no longer recognise it: asking again could refund twice. Check the "
                    "payment at the provider and finish the refund there."
                ),
                code="retry_window_passed",
            )
        refund.status = RefundStatus.REQUESTED
        refund.updated_at = now
        refund.save(update_fields=["status", "updated_at"])
        record(
            actor,
            AuditAction.PAYMENT_REFUND_RETRY,
            f"order:{refund.attempt.order_id}",
            {"refund": str(refund.public_id), "idempotency_key": refund.idempotency_key},
            now=now,
        )
    return _send_refund(refund, actor=actor, now=now)


def _send_refund(refund: Refund, *, actor: str, now: datetime) -> Refund:
    attempt = PaymentAttempt.objects.get(pk=refund.attempt_id)
    Refund.objects.filter(pk=refund.pk).update(tries=F("tries") + 1)
    try:
        provider = get_provider(attempt.provider)
        answer = provider.refund(
            attempt,
            refund.amount,
            idempotency_key=refund.idempotency_key,
            refund_id=str(refund.public_id),
        )
    except (LookupError, PaymentProviderError) as exc:
        logger.error("refund %s failed at %s: %s", refund.public_id, attempt.provider, exc)
        # Only while still waiting: a webhook may have confirmed the refund
        # while this call was timing out, and a confirmed refund stays so.
        _refund_failed(refund, str(exc), actor=actor, now=now, if_requested=True)
    else:
        if answer.status == SUCCEEDED:
            _confirm_refund(refund, answer.reference, actor=actor, now=now)
        else:
            Refund.objects.filter(pk=refund.pk).update(
                provider_reference=answer.reference[:255], updated_at=now
            )
    refund.refresh_from_db()
    return refund


def _order_refunds_settled(order_id: int) -> bool:
    return (
        not Refund.objects.filter(attempt__order_id=order_id)
        .exclude(status=RefundStatus.CONFIRMED)
        .exists()
    )


def _confirm_refund(
    refund: Refund, reference: str, *, actor: str, now: datetime, if_requested: bool = False
) -> str:
    """The provider has given the money back. Idempotent. `if_requested`:
    only a refund still waiting (what the reconcile job asked about)."""
    with transaction.atomic():
        # Lock order: attempt, refund, then (inside the order actions) order.
        attempt = _lock_attempt(refund.attempt_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == RefundStatus.CONFIRMED:
            return DUPLICATE
        if if_requested and refund.status != RefundStatus.REQUESTED:
            return DUPLICATE
        refund.status = RefundStatus.CONFIRMED
        refund.provider_reference = (reference or refund.provider_reference)[:255]
        refund.failure_message = ""
        refund.confirmed_at = now
        refund.updated_at = now
        refund.save(
            update_fields=[
                "status",
                "provider_reference",
                "failure_message",
                "confirmed_at",
                "updated_at",
            ]
        )
        record(
            actor,
            AuditAction.PAYMENT_REFUND_CONFIRM,
            f"order:{attempt.order_id}",
            {
                "refund": str(refund.public_id),
                "amount": refund.amount,
                "currency": refund.currency,
                "reference": refund.provider_reference,
            },
            now=now,
        )
        if attempt.failure_code != PAID_TWICE and _order_refunds_settled(attempt.order_id):
            do_mark_refund_returned(TopUpOrder(pk=attempt.order_id), now=now)
        confirmed = attempt.refunds.filter(status=RefundStatus.CONFIRMED).aggregate(
            total=Sum("amount")
        )["total"]
        if confirmed == attempt.amount:
            attempt.status = AttemptStatus.REFUNDED
            attempt.provider_data = {**attempt.provider_data, "refund": refund.provider_reference}
            attempt.updated_at = now
            attempt.save(update_fields=["status", "provider_data", "updated_at"])
            record(
                actor,
                AuditAction.PAYMENT_REFUND,
                f"order:{attempt.order_id}",
                {
                    "attempt": str(attempt.public_id),
                    "amount": attempt.amount,
                    "reason": refund.reason,
                },
                now=now,
            )
        refund_settled.send(Refund, refund=refund, now=now)
    return REFUND_CONFIRMED


def _refund_failed(
    refund: Refund, message: str, *, actor: str, now: datetime, if_requested: bool = False
) -> str:
    """The provider refused the refund, did not answer, or reversed it later:
    the money is still due to the payer. The books stay reversed (they say
    what is owed); the refund can be asked again. `if_requested`: only a
    refund still waiting (a webhook may have confirmed it meanwhile)."""
    with transaction.atomic():
        attempt = _lock_attempt(refund.attempt_id)
        refund = Refund.objects.select_for_update().get(pk=refund.pk)
        if refund.status == RefundStatus.FAILED:
            return DUPLICATE
        if if_requested and refund.status != RefundStatus.REQUESTED:
            return DUPLICATE
        was_confirmed = refund.status == RefundStatus.CONFIRMED
        refund.status = RefundStatus.FAILED
        refund.failure_message = message[:255]
        refund.confirmed_at = None
        refund.updated_at = now
        refund.save(update_fields=["status", "failure_message", "confirmed_at", "updated_at"])
        record(
            actor,
            AuditAction.PAYMENT_REFUND_FAIL,
            f"order:{attempt.order_id}",
            {"refund": str(refund.public_id), "amount": refund.amount, "error": message[:255]},
            now=now,
        )
        if was_confirmed and attempt.failure_code != PAID_TWICE:
            do_mark_refund_due(TopUpOrder(pk=attempt.order_id), now=now)
        if attempt.status == AttemptStatus.REFUNDED:
            attempt.status = AttemptStatus.SUCCEEDED
            attempt.updated_at = now
            attempt.save(update_fields=["status", "updated_at"])
        refund_settled.send(Refund, refund=refund, now=now)
    return REFUND_FAILED


@outside_transaction
def do_refund_attempt(
    attempt: PaymentAttempt, *, reason: str, actor: str, now: datetime | None = None
) -> PaymentAttempt:
    """Refund a successful payment in full: reverse the top-up in the books,
    then give the money back at the provider (`do_request_refund`). If the
    provider call fails, the order stays refunded with `refund_due` set, and
    calling this again asks the provider again for the same refund under the
    same idempotency key, so the money goes back once."""
    now = now or clock.now()
    earlier = attempt.refunds.filter(status=RefundStatus.FAILED, amount=attempt.amount).first()
    if earlier is not None:
        refund = do_retry_refund(earlier, actor=actor, now=now)
    else:
        refund = do_request_refund(attempt, reason=reason, actor=actor, now=now)
    if refund.status == RefundStatus.FAILED:
        raise PaymentError(
            _("The top-up was reversed, but the provider refund failed; finance must finish it."),
            code="provider_refund_failed",
        )
    attempt.refresh_from_db()
    return attempt


def find_refund(provider: str, notice: RefundNotice) -> Refund | None:
    refunds = Refund.objects.filter(attempt__provider=provider)
    if notice.refund_id:
        with contextlib.suppress(ValueError):
            found = refunds.filter(public_id=uuid.UUID(notice.refund_id)).first()
            if found is not None:
                return found
    if notice.reference:
        return refunds.filter(provider_reference=notice.reference).first()
    return None


def _settle_refund_notices(
    event: WebhookEvent, attempt: PaymentAttempt | None, now: datetime
) -> str:
    actor = f"payments:{event.provider}"
    results = []
    for notice in event.refunds:
        refund = find_refund(event.provider, notice)
        if refund is None and notice.total is not None and attempt is not None:
            results.extend(_settle_refunded_total(attempt, notice.total, actor, now))
            continue
        if refund is None:
            results.append(UNKNOWN_REFUND)
        elif notice.status == SUCCEEDED:
            results.append(_confirm_refund(refund, notice.reference, actor=actor, now=now))
        elif notice.status == FAILED:
            message = f"{event.provider} reported the refund {notice.reference} failed"
            results.append(_refund_failed(refund, message, actor=actor, now=now))
        else:
            if notice.reference and not refund.provider_reference:
                Refund.objects.filter(pk=refund.pk).update(provider_reference=notice.reference)
            results.append(REFUND_PENDING)
    # One word for the event: what it did, else why it did nothing.
    for outcome in (REFUND_CONFIRMED, REFUND_FAILED, REFUND_PENDING, DUPLICATE):
        if outcome in results:
            return outcome
    return UNKNOWN_REFUND


# More waiting refunds on one payment than this are not matched to a total
# (2^n subsets); they wait for their own events and the reconciler.
MAX_REFUNDS_MATCHED_TO_TOTAL = 12


def _settle_refunded_total(
    attempt: PaymentAttempt, total: int, actor: str, now: datetime
) -> list[str]:
    """The provider says only how much of the payment it has refunded in all
    (Stripe's charge.refunded without its refund list). The waiting refunds
    it covers are confirmed only when exactly one set of them makes up the
    new part of that total. Otherwise it could be either (two refunds of
    HK$30, one done and one still pending at the provider): they are left to
    their own refund events and to the reconciler, which asks the provider
    about each one by its id."""
    confirmed = int(
        attempt.refunds.filter(status=RefundStatus.CONFIRMED).aggregate(total=Sum("amount"))[
            "total"
        ]
        or 0
    )
    if total <= confirmed:
        return [DUPLICATE]
    waiting = list(
        attempt.refunds.filter(status=RefundStatus.REQUESTED).order_by("created_at", "pk")
    )
    # Two sets are enough to know it is not exactly one.
    matches = (
        list(islice(sets_making(total - confirmed, waiting, lambda refund: refund.amount), 2))
        if len(waiting) <= MAX_REFUNDS_MATCHED_TO_TOTAL
        else []
    )
    if len(matches) != 1:
        logger.info(
            "payment attempt %s: %s refunded in all matches %s set of its %s waiting refunds",
            attempt.pk,
            total,
            "more than one" if matches else "no",
            len(waiting),
        )
        return [REFUND_PENDING] if waiting else [UNKNOWN_REFUND]
    return [_confirm_refund(refund, "", actor=actor, now=now) for refund in matches[0]]


@one_transaction
def do_record_event(event: WebhookEvent, *, now: datetime | None = None) -> str:
    """Store a verified provider event once and settle its attempt. A replayed
    event id hits the unique constraint and changes nothing."""
    now = now or clock.now()
    stored, created = ProviderEvent.objects.get_or_create(
        provider=event.provider,
        event_id=event.event_id,
        defaults={
            "type": event.type[:100],
            "received_at": now,
            "payload_sha256": event.payload_sha256,
        },
    )
    if not created:
        return DUPLICATE
    attempt = find_attempt(event)
    if event.refunds:
        outcome = _settle_refund_notices(event, attempt, now)
    elif attempt is None:
        outcome = UNKNOWN_ATTEMPT
    elif event.outcome is None:
        outcome = IGNORED
    else:
        outcome = settle(attempt, event.outcome, now=now)
    stored.attempt = attempt
    stored.processed_at = now
    stored.outcome = outcome
    stored.save(update_fields=["attempt", "processed_at", "outcome"])
    return outcome


def find_attempt(event: WebhookEvent) -> PaymentAttempt | None:
    attempts = PaymentAttempt.objects.filter(provider=event.provider)
    if event.attempt_id:
        return attempts.filter(public_id=event.attempt_id).first()
    if event.reference:
        return (
            attempts.filter(provider_reference=event.reference).first()
            # Stripe names a charge's payment by its payment intent.
            or attempts.filter(provider_data__payment_intent=event.reference).first()
        )
    return None


def sync_attempt(attempt: PaymentAttempt, *, cancelled: bool = False) -> PaymentAttempt:
    """Ask the provider about an open attempt and settle what it says: the
    return page and the status poll do not wait for the webhook."""
    if attempt.is_open:
        outcome: Outcome | None = None
        try:
            outcome = get_provider(attempt.provider).fetch_status(attempt)
        except (LookupError, PaymentProviderError) as exc:
            logger.warning("status of attempt %s unavailable: %s", attempt.pk, exc)
        if outcome is not None and outcome.is_final:
            settle(attempt, outcome)
        elif cancelled:
            # The payer came back through the cancel link; a payment that still
            # completes later is honoured all the same.
            settle(attempt, Outcome(CANCELLED, failure_code="cancelled"))
        attempt.refresh_from_db()
    return attempt


@dataclass
class ReconcileResult:
    checked: int = 0
    settled: int = 0
    errors: int = 0


def reconcile_open_attempts(
    now: datetime | None = None, *, batch_size: int = 200
) -> ReconcileResult:
    """Ask the provider about attempts that are still open some time after
    the payer was sent to pay, and settle what it says: a payment the
    provider captured is fulfilled even when its webhook never arrives (a
    worker killed while delivering it) and the payer never comes back to the
    return page. Attempts older than PAYMENTS_RECONCILE_WINDOW_HOURS are left
    to finance. Safe to run on several workers at once: settle() locks the
    attempt and is idempotent."""
    now = now or clock.now()
    after = timedelta(seconds=settings.PAYMENTS_RECONCILE_AFTER_SECONDS)
    window = timedelta(hours=settings.PAYMENTS_RECONCILE_WINDOW_HOURS)
    result = ReconcileResult()
    attempts = list(
        PaymentAttempt.objects.filter(
            status__in=OPEN_STATUSES,
            created_at__lte=now - after,
            created_at__gte=now - window,
        ).order_by("created_at", "pk")[:batch_size]
    )
    for attempt in attempts:
        result.checked += 1
        before = attempt.status
        try:
            attempt = sync_attempt(attempt)
        except Exception:
            logger.exception("could not reconcile payment attempt %s", attempt.pk)
            result.errors += 1
            continue
        if attempt.status != before:
            result.settled += 1
    return result


@dataclass
class RefundReconcileResult:
    checked: int = 0
    confirmed: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    errors: int = 0


def reconcile_pending_refunds(
    now: datetime | None = None, *, batch_size: int = 200
) -> RefundReconcileResult:
    """Ask the provider about refunds still `requested` some time after they
    were sent (REFUNDS_RECONCILE_AFTER_SECONDS): a refund answered "pending"
    whose webhook never arrives would otherwise wait for ever. What the
    provider says is settled through the webhook's own steps, so the refund
    is confirmed (or failed) once, however often the job, the webhook and a
    retry meet. A provider that cannot be asked is skipped and logged. Safe to
    run on several workers at once."""
    now = now or clock.now()
    after = timedelta(seconds=settings.REFUNDS_RECONCILE_AFTER_SECONDS)
    result = RefundReconcileResult()
    for refund in _waiting_refunds(now - after, batch_size):
        result.checked += 1
        provider_name = refund.attempt.provider
        actor = f"payments:{provider_name}"
        if not refund.provider_reference:
            _resend_unanswered(refund, actor=actor, now=now, result=result)
            continue
        try:
            answer = get_provider(provider_name).fetch_refund(refund)
        except (LookupError, PaymentProviderError) as exc:
            if isinstance(exc, PaymentProviderError) and exc.code != "not_supported":
                result.errors += 1
            else:
                result.skipped += 1
            logger.warning(
                "refund %s: %s cannot be asked about it: %s", refund.public_id, provider_name, exc
            )
            continue
        try:
            if answer.status == SUCCEEDED:
                settled = _confirm_refund(
                    refund, answer.reference, actor=actor, now=now, if_requested=True
                )
                if settled != DUPLICATE:
                    result.confirmed += 1
            elif answer.status == FAILED:
                message = f"{provider_name} reports the refund {answer.reference} failed"
                settled = _refund_failed(refund, message, actor=actor, now=now, if_requested=True)
                if settled != DUPLICATE:
                    result.failed += 1
            else:
                result.pending += 1
        except Exception:
            logger.exception("could not reconcile refund %s", refund.public_id)
            result.errors += 1
    return result


def _waiting_refunds(cutoff: datetime, batch_size: int) -> Iterator[Refund]:
    """Every refund still waiting since before `cutoff`, oldest first, read
    `batch_size` at a time: refunds a provider keeps pending for days never
    hold the newer ones back."""
    after: tuple[datetime, int] | None = None
    while True:
        waiting = Refund.objects.filter(status=RefundStatus.REQUESTED, updated_at__lte=cutoff)
        if after is not None:
            waiting = waiting.filter(
                Q(updated_at__gt=after[0]) | Q(updated_at=after[0], pk__gt=after[1])
            )
        batch = list(waiting.select_related("attempt").order_by("updated_at", "pk")[:batch_size])
        yield from batch
        if len(batch) < batch_size:
            return
        after = (batch[-1].updated_at, batch[-1].pk)


def _resend_unanswered(
    refund: Refund, *, actor: str, now: datetime, result: RefundReconcileResult
) -> None:
    """A refund with no answer from the provider at all (the process stopped
    between writing it and the provider's reply): there is nothing to ask the
    provider about, so it is sent again under its own idempotency key, which
    returns the first refund if there was one. Past the window in which the
    provider remembers the key, it is failed instead, for finance to check at
    the provider: sending it again then could refund twice."""
    try:
        if now - refund.created_at > REFUND_RETRY_WINDOW:
            message = "the provider never answered; check the payment at the provider"
            if (
                _refund_failed(refund, message, actor=actor, now=now, if_requested=True)
                != DUPLICATE
            ):
                result.failed += 1
            return
        sent = _send_refund(refund, actor=actor, now=now)
    except Exception:
        logger.exception("could not send refund %s again", refund.public_id)
        result.errors += 1
        return
    if sent.status == RefundStatus.CONFIRMED:
        result.confirmed += 1
    elif sent.status == RefundStatus.FAILED:
        result.failed += 1
    else:
        result.pending += 1
