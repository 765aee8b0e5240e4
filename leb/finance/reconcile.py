"""The comparison behind a settlement run: leb's ledger for one provider and
day against the provider's own transactions. Reads only; the action writes.

leb's side is the provider's clearing account: a `payment` transfer out of it
is a capture, its reversal a refund. The provider's side is what
`list_transactions` returns. They meet on the payment attempt: the provider
echoes leb's attempt id, or names the payment by the reference leb stored."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q

from leb.common.money import sets_making
from leb.ledger.models import Account, AccountKind, Transfer
from leb.payments.models import PaymentAttempt, Refund, RefundStatus
from leb.payments.providers.base import CAPTURE, REFUND, ProviderTransaction
from leb.topups.models import OrderStatus, TopUpOrder

from .models import MismatchKind

# A payment booked a moment before midnight on one side and after it on the
# other is the same payment: records this close to the day still match it.
SKEW = timedelta(hours=2)
# A payment that never became a top-up: its refund has nothing to reverse in leb.
NEVER_A_TOPUP = frozenset({"paid_twice", "amount_mismatch"})


def operator_zone() -> ZoneInfo:
    return ZoneInfo(str(settings.TIME_ZONE))


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in the operator's time zone."""
    zone = operator_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


@dataclass
class Found:
    kind: str
    order_id: int | None = None
    attempt_id: int | None = None
    reference: str = ""
    provider_transaction: str = ""
    leb_amount: int | None = None
    provider_amount: int | None = None
    detail: str = ""


@dataclass
class Totals:
    leb_captured: int = 0
    leb_refunded: int = 0
    leb_pending: int = 0
    leb_captures: int = 0
    leb_refunds: int = 0
    provider_captured: int = 0
    provider_refunded: int = 0
    provider_pending: int = 0
    provider_fees: int = 0
    provider_captures: int = 0
    provider_refunds: int = 0
    mismatches: list[Found] = field(default_factory=list)


@dataclass
class LebMovement:
    order: TopUpOrder
    amount: int
    currency: str


def _order_id(group_key: str) -> int | None:
    # Payment groups are keyed "order:<pk>:payment" (and ":reversal").
    parts = group_key.split(":")
    if len(parts) >= 3 and parts[0] == "order" and parts[1].isdigit():
        return int(parts[1])
    return None


# A partial refund owes the provider's clearing account its amount (from the
# wallet and from fee revenue); the refund that completes the payment takes
# those postings back and reverses the payment whole.
PARTIAL_REFUND_CODES = ("refund.credit", "refund.fee")
FOLDED_REFUND_CODES = tuple(f"reversal:{code}" for code in PARTIAL_REFUND_CODES)


def leb_movements(
    provider: str, start: datetime, end: datetime
) -> tuple[list[LebMovement], list[LebMovement]]:
    """leb's captures and refunds for `provider` posted in [start, end); the
    refunds as one movement per order, what the day's postings owe the payer
    in all (partial refunds, less partial refunds folded into a full one).
    Selected through the transfer groups' posting time (indexed) and the
    provider's clearing accounts, so the cost follows the day's postings,
    not the whole history of the account."""
    clearing = list(
        Account.objects.filter(
            kind=AccountKind.CLEARING, code__startswith=f"clearing:{provider}:"
        ).values_list("pk", flat=True)
    )
    if not clearing:
        return [], []
    transfers = list(
        Transfer.objects.filter(group__created_at__gte=start, group__created_at__lt=end)
        .filter(
            Q(code="payment", debit_account_id__in=clearing)
            | Q(code="reversal:payment", credit_account_id__in=clearing)
            | Q(code__in=PARTIAL_REFUND_CODES, credit_account_id__in=clearing)
            | Q(code__in=FOLDED_REFUND_CODES, debit_account_id__in=clearing)
        )
        .values_list("code", "amount", "currency", "group__idempotency_key")
        .order_by("pk")
    )
    order_ids = {_order_id(key) for _code, _amount, _currency, key in transfers} - {None}
    orders = TopUpOrder.objects.in_bulk(order_ids)
    captures: list[LebMovement] = []
    refunded: dict[tuple[int, str], int] = {}
    for code, amount, currency, key in transfers:
        order = orders.get(_order_id(key) or 0)
        if order is None:
            continue
        if code == "payment":
            captures.append(LebMovement(order, amount, currency))
            continue
        sign = -1 if code in FOLDED_REFUND_CODES else 1
        refunded[(order.pk, currency)] = refunded.get((order.pk, currency), 0) + sign * amount
    refunds = [
        LebMovement(orders[order_id], amount, currency)
        for (order_id, currency), amount in refunded.items()
        if amount
    ]
    return captures, refunds


def _paying_attempts(provider: str, orders: list[TopUpOrder]) -> dict[int, PaymentAttempt]:
    """order id -> the attempt whose payment leb booked for it."""
    attempts = PaymentAttempt.objects.filter(
        provider=provider, order_id__in=[order.pk for order in orders]
    ).order_by("pk")
    by_order: dict[int, PaymentAttempt] = {}
    references = {order.pk: order.payment_reference for order in orders}
    for attempt in attempts:
        own = attempt.provider_reference or str(attempt.public_id)
        if own == references.get(attempt.order_id) or attempt.order_id not in by_order:
            by_order[attempt.order_id] = attempt
    return by_order


def _attempts_for(provider: str, records: list[ProviderTransaction]) -> dict[str, PaymentAttempt]:
    """provider record's transaction id -> leb's attempt it belongs to."""
    public_ids = set()
    for record in records:
        try:
            public_ids.add(uuid.UUID(record.attempt_id))
        except ValueError:
            continue
    references = {record.reference for record in records if record.reference}
    if not (public_ids or references):
        return {}
    attempts = list(
        PaymentAttempt.objects.filter(provider=provider).filter(
            Q(public_id__in=public_ids)
            | Q(provider_reference__in=references)
            | Q(provider_data__payment_intent__in=references)
            | Q(provider_data__capture_id__in=references)
        )
    )
    by_public = {str(attempt.public_id): attempt for attempt in attempts}
    by_reference: dict[str, PaymentAttempt] = {}
    for attempt in attempts:
        for value in (
            attempt.provider_reference,
            attempt.provider_data.get("payment_intent"),
            attempt.provider_data.get("capture_id"),
        ):
            if value:
                by_reference[str(value)] = attempt
    found = {}
    for record in records:
        owner = by_public.get(record.attempt_id) or by_reference.get(record.reference)
        if owner is not None:
            found[record.transaction_id] = owner
    return found


def compare_day(
    provider: str,
    day: date,
    records: list[ProviderTransaction],
) -> dict[str, Totals]:
    """Per currency: both sides' totals for the day and every mismatch.
    `records` may reach SKEW past either end of the day: those only match."""
    start, end = day_window(day)
    captures, refunds = leb_movements(provider, start, end)
    in_day = [record for record in records if start <= record.occurred_at < end]
    attempt_of = _attempts_for(provider, records)
    paying = _paying_attempts(provider, [m.order for m in captures + refunds])
    totals: dict[str, Totals] = defaultdict(Totals)

    provider_captures: dict[int, list[ProviderTransaction]] = defaultdict(list)
    provider_refunds: dict[int, list[ProviderTransaction]] = defaultdict(list)
    for record in records:
        owner = attempt_of.get(record.transaction_id)
        if owner is not None:
            target = provider_captures if record.kind == CAPTURE else provider_refunds
            target[owner.pk].append(record)
    matched: set[str] = set()

    for record in in_day:
        day_totals = totals[record.currency]
        day_totals.provider_fees += record.fee
        if record.kind == CAPTURE:
            day_totals.provider_captured += record.amount
            day_totals.provider_captures += 1
            if record.pending:
                day_totals.provider_pending += record.amount
        elif record.kind == REFUND:
            day_totals.provider_refunded += record.amount
            day_totals.provider_refunds += 1

    for movement in captures:
        order = movement.order
        day_totals = totals[movement.currency]
        day_totals.leb_captured += movement.amount
        day_totals.leb_captures += 1
        attempt = paying.get(order.pk)
        seen = provider_captures.get(attempt.pk, []) if attempt else []
        if order.status == OrderStatus.PAID:
            day_totals.leb_pending += movement.amount
            day_totals.mismatches.append(
                Found(
                    MismatchKind.PAID_NOT_FULFILLED,
                    order_id=order.pk,
                    attempt_id=attempt.pk if attempt else None,
                    reference=order.payment_reference,
                    leb_amount=movement.amount,
                    provider_amount=seen[0].amount if seen else None,
                    detail="paid, still awaiting fulfilment",
                )
            )
        if not seen:
            day_totals.mismatches.append(
                Found(
                    MismatchKind.FULFILLED_WITHOUT_CAPTURE,
                    order_id=order.pk,
                    attempt_id=attempt.pk if attempt else None,
                    reference=order.payment_reference,
                    leb_amount=movement.amount,
                    detail="leb booked a payment the provider has not captured",
                )
            )
            continue
        record = seen[0]
        matched.update(r.transaction_id for r in seen)
        if (record.amount, record.currency) != (movement.amount, movement.currency):
            day_totals.mismatches.append(
                Found(
                    MismatchKind.AMOUNT_DIFFERS,
                    order_id=order.pk,
                    attempt_id=attempt.pk if attempt else None,
                    reference=record.reference,
                    provider_transaction=record.transaction_id,
                    leb_amount=movement.amount,
                    provider_amount=record.amount,
                    detail=f"leb {movement.currency}, provider {record.currency}",
                )
            )

    for movement in refunds:
        order = movement.order
        day_totals = totals[movement.currency]
        day_totals.leb_refunded += movement.amount
        day_totals.leb_refunds += 1
        attempt = paying.get(order.pk)
        seen = provider_refunds.get(attempt.pk, []) if attempt else []
        claimed = _refund_records_making(movement.amount, seen, start, end)
        if claimed is not None:
            matched.update(r.transaction_id for r in claimed)
            continue
        # No set of them makes the amount: the day's own records are what
        # this mismatch is about (not reported again as unmatched).
        own = [r for r in seen if start <= r.occurred_at < end] or seen
        matched.update(r.transaction_id for r in own)
        day_totals.mismatches.append(
            Found(
                MismatchKind.REFUND_DIFFERS,
                order_id=order.pk,
                attempt_id=attempt.pk if attempt else None,
                reference=order.payment_reference,
                provider_transaction=own[0].transaction_id if own else "",
                leb_amount=movement.amount,
                provider_amount=sum(r.amount for r in own) if own else None,
                detail="refunded in leb, not at the provider"
                if not own
                else "the provider refunded another amount",
            )
        )

    _unmatched_provider_records(
        [r for r in in_day if r.transaction_id not in matched], attempt_of, totals
    )
    return dict(totals)


# More provider refunds than this on one payment are taken all together, not
# matched as sets (2^n subsets).
MAX_REFUNDS_MATCHED = 12


def _refund_records_making(
    amount: int, seen: list[ProviderTransaction], start: datetime, end: datetime
) -> list[ProviderTransaction] | None:
    """The provider's refunds of one payment that make up what leb refunded
    on the day [start, end): the set closest to the day (records inside it
    first, then the ones just across midnight), the smallest on a tie. A
    refund of a neighbouring day, within SKEW, belongs to that day's own
    refund and is not added in. None when no set makes the amount."""

    def outside(record: ProviderTransaction) -> timedelta:
        if record.occurred_at < start:
            return start - record.occurred_at
        if record.occurred_at >= end:
            return record.occurred_at - end
        return timedelta(0)

    if len(seen) > MAX_REFUNDS_MATCHED:
        return seen if sum(r.amount for r in seen) == amount else None
    best: tuple[timedelta, int] | None = None
    chosen: list[ProviderTransaction] | None = None
    for subset in sets_making(amount, seen, lambda record: record.amount):
        cost = (sum((outside(r) for r in subset), timedelta(0)), len(subset))
        if best is None or cost < best:
            best, chosen = cost, list(subset)
    return chosen


def _unmatched_provider_records(
    records: list[ProviderTransaction],
    attempt_of: dict[str, PaymentAttempt],
    totals: dict[str, Totals],
) -> None:
    """The provider's records of the day that no leb movement of the day
    claimed: fine when leb booked the same payment just across midnight,
    a mismatch otherwise."""
    orders = TopUpOrder.objects.in_bulk({attempt.order_id for attempt in attempt_of.values()})
    for record in records:
        attempt = attempt_of.get(record.transaction_id)
        order = orders.get(attempt.order_id) if attempt else None
        own = (attempt.provider_reference or str(attempt.public_id)) if attempt else ""
        is_payment_of_order = bool(order and own == order.payment_reference)
        mismatches = totals[record.currency].mismatches
        found = Found(
            MismatchKind.PAID_NOT_FULFILLED
            if record.kind == CAPTURE
            else MismatchKind.REFUND_DIFFERS,
            order_id=order.pk if order else None,
            attempt_id=attempt.pk if attempt else None,
            reference=record.reference,
            provider_transaction=record.transaction_id,
            provider_amount=record.amount,
        )
        if record.kind == CAPTURE:
            if order is not None and is_payment_of_order and order.fulfilled_at is not None:
                if order.paid_amount == record.amount and order.currency == record.currency:
                    continue  # booked by leb on a neighbouring day
                found.kind = MismatchKind.AMOUNT_DIFFERS
                found.leb_amount = order.paid_amount
                found.detail = "leb booked this payment on another day, for another amount"
            elif attempt is None:
                found.detail = "no payment attempt in leb has this reference"
            elif attempt.failure_code in NEVER_A_TOPUP:
                found.detail = f"captured, but refused in leb ({attempt.failure_code}): refund it"
            else:
                found.detail = "captured at the provider, no top-up in leb"
            mismatches.append(found)
            continue
        if attempt is not None and _refund_booked_another_day(attempt, record):
            continue  # leb booked this refund (or its request) on a neighbouring day
        if attempt is not None and attempt.failure_code in NEVER_A_TOPUP:
            if record.amount == attempt.amount:
                continue  # money that never became a top-up, given back
        elif (
            order is not None
            and is_payment_of_order
            and order.status == OrderStatus.REFUNDED
            and order.paid_amount == record.amount
        ):
            continue  # reversed by leb on a neighbouring day
        found.detail = (
            "no payment attempt in leb has this reference"
            if attempt is None
            else "refunded at the provider, not reversed in leb"
        )
        mismatches.append(found)


# How far apart leb's request of a refund and the provider's booking of it
# may be: a failed refund asked again the next day, one the provider kept
# pending for a few days.
REFUND_BOOKING_SPREAD = timedelta(days=7)


def _refund_booked_another_day(attempt: PaymentAttempt, record: ProviderTransaction) -> bool:
    """Whether leb holds a refund of this payment for this amount, requested
    on another day within REFUND_BOOKING_SPREAD of the provider's booking and
    not failed: the same refund, booked by each side on its own day."""
    start, end = day_window(record.occurred_at.astimezone(operator_zone()).date())
    return (
        Refund.objects.filter(attempt=attempt, amount=record.amount)
        .exclude(status=RefundStatus.FAILED)
        .filter(
            created_at__gte=record.occurred_at - REFUND_BOOKING_SPREAD,
            created_at__lte=record.occurred_at + REFUND_BOOKING_SPREAD,
        )
        .exclude(created_at__gte=start, created_at__lt=end)
        .exists()
    )
