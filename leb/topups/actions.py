"""Top-up orders: create, pay, fulfil, refund, expire, recover.

Every action is one transaction. Fulfilment locks the order, then the line
(always in that order), posts the ledger transfers, extends validity, writes
the line's history, queues the receipt notification, and takes the receipt
number last, so the receipt counter's row lock is held only until commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.catalog import actions as catalog_actions
from leb.catalog.models import Plan
from leb.catalog.quotes import Quote, quote
from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions
from leb.ledger.actions import (
    InsufficientFunds,
    Leg,
    post_transfers,
    reverse_group,
    system_accounts,
)
from leb.ledger.models import Account, AccountKind, TransferGroup
from leb.lines import lifecycle
from leb.lines.actions import apply_topup_validity, lock_line, revoke_topup_validity, wallet_for
from leb.lines.models import Line, LineStatus, RefundValidityRule

from .models import OrderStatus, ReceiptCounter, TopUpOrder
from .signals import order_fulfilled

logger = logging.getLogger(__name__)

CLOSED = (OrderStatus.FAILED, OrderStatus.EXPIRED, OrderStatus.CANCELLED)
INTERNALLY_SETTLED = ("admin", "balance", "agent", "")


class OrderError(ValidationError):
    """A refused operation on an order; the message is for the person who asked."""


def _request_hash(**fields: Any) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def _lock_order(order_id: int) -> TopUpOrder:
    return TopUpOrder.objects.select_for_update(of=("self",)).get(pk=order_id)


@own_transactions
def do_create_order(
    *,
    line: Line,
    channel: str,
    idempotency_key: str,
    plan: Plan | None = None,
    amount: int | None = None,
    promo_code: str = "",
    customer: Any = None,
    actor: str = "",
    now: datetime | None = None,
) -> TopUpOrder:
    """An order awaiting payment, priced now and frozen. The same key with the
    same request returns the first order (its `created_now` False); with a
    different request, an error."""
    now = now or clock.now()
    if (plan is None) == (amount is None):
        raise OrderError(_("Choose a plan or an amount."), code="plan_or_amount")
    if not idempotency_key or len(idempotency_key) > 200:
        raise OrderError(_("A request key of 1 to 200 characters is required."), code="key_invalid")
    digest = _request_hash(
        line=line.pk,
        channel=channel,
        plan=plan.pk if plan else None,
        amount=amount,
        promo=(promo_code or "").strip().lower(),
    )
    with transaction.atomic():
        # The line lock serialises concurrent requests with the same key too.
        locked_line = lock_line(line.pk)
        existing = TopUpOrder.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_hash != digest:
                raise OrderError(
                    _("This request key was already used for a different top-up."),
                    code="key_conflict",
                )
            return existing
        frozen = quote(locked_line, plan if plan is not None else amount, channel, promo_code, now)  # type: ignore[arg-type]
        order = TopUpOrder.objects.create(
            line=locked_line,
            channel=channel,
            plan=plan,
            currency=frozen.currency,
            price=frozen.price,
            quote=frozen.to_dict(),
            idempotency_key=idempotency_key,
            request_hash=digest,
            customer=customer,
            actor=actor,
            created_at=now,
            expires_at=now + timedelta(minutes=settings.ORDER_PAYMENT_TTL_MINUTES),
        )
        if frozen.promotion_id:
            catalog_actions.reserve_promotion(
                frozen.promotion_id, locked_line, order.order_ref, frozen.promotion_cost, now
            )
    order.created_now = True
    return order


@one_transaction
def do_mark_paid(
    order: TopUpOrder,
    *,
    amount: int,
    currency: str,
    provider: str,
    reference: str,
    paid_from: Account | None = None,
    now: datetime | None = None,
) -> TopUpOrder:
    """Record that the provider holds the money. Repeating the same payment is a
    no-op; a different amount, currency or second payment is refused.
    A payment that arrives after its order expired is still honoured.

    The money comes from the provider's clearing account, or from `paid_from`
    (the line's own wallet when a plan is bought from balance); a wallet that
    is too low raises InsufficientFunds and nothing is written."""
    now = now or clock.now()
    order = _lock_order(order.pk)
    changed = _record_payment(order, amount, currency, provider, reference, paid_from, now, {})
    if changed:
        order.save(update_fields=changed)
    return order


@one_transaction
def do_pay_and_fulfil(
    order: TopUpOrder,
    *,
    amount: int,
    currency: str,
    provider: str,
    reference: str,
    paid_from: Account | None = None,
    now: datetime | None = None,
) -> TopUpOrder:
    """do_mark_paid, then do_fulfil_order, in one transaction: what a channel
    does once the money is confirmed. The order is locked and written once,
    and the system accounts are read once for both postings. Same rules and
    errors as the two actions; a repeated payment returns the order as it is."""
    now = now or clock.now()
    order = _lock_order(order.pk)
    accounts: dict[str, Account] = {}
    changed = _record_payment(
        order, amount, currency, provider, reference, paid_from, now, accounts
    )
    return _fulfil(order, now, accounts, changed)


def _record_payment(
    order: TopUpOrder,
    amount: int,
    currency: str,
    provider: str,
    reference: str,
    paid_from: Account | None,
    now: datetime,
    accounts: dict[str, Account],
) -> list[str]:
    """The payment posted and set on the locked order; returns the order's
    fields to save (none for a repeat of the same payment)."""
    if order.paid_at is not None:
        if (
            order.paid_amount,
            order.currency,
            order.payment_provider,
            order.payment_reference,
        ) == (amount, currency.upper(), provider, reference):
            return []
        raise OrderError(
            _("This order is already paid; a second, different payment was refused."),
            code="paid_twice",
        )
    if currency.upper() != order.currency or amount != order.price:
        raise OrderError(
            _("The payment (%(amount)s %(currency)s) does not match the order."),
            code="amount_mismatch",
            params={"amount": amount, "currency": currency},
        )
    if order.status in CLOSED:
        # The money arrived anyway: keep the promise the subscriber paid for.
        frozen = Quote.from_dict(order.quote)
        if frozen.promotion_id:
            catalog_actions.reclaim_promotion(order.order_ref)
        logger.warning("late payment for %s order %s honoured", order.status, order.pk)
    if paid_from is None:
        source, suspense = system_accounts(
            order.currency,
            (AccountKind.CLEARING, provider),
            (AccountKind.SUSPENSE, ""),
            known=accounts,
        )
        code = "payment"
    else:
        source = paid_from
        (suspense,) = system_accounts(order.currency, (AccountKind.SUSPENSE, ""), known=accounts)
        code = f"{provider}.payment"
    post_transfers(
        f"{order.order_ref}:payment",
        [Leg(source, suspense, amount, code)],
        description=f"payment {provider} {reference}",
        now=now,
        savepoint=False,
    )
    order.status = OrderStatus.PAID
    order.paid_at = now
    order.paid_amount = amount
    order.payment_provider = provider
    order.payment_reference = reference
    order.finished_at = None
    order.failure_reason = ""
    return [
        "status",
        "paid_at",
        "paid_amount",
        "payment_provider",
        "payment_reference",
        "finished_at",
        "failure_reason",
    ]


def _fulfil_legs(
    order: TopUpOrder,
    frozen: Quote,
    line: Line,
    restore_fee: int,
    known: dict[str, Account],
) -> list[Leg]:
    currency = order.currency
    wallet = wallet_for(line)
    paid = order.price
    from_payment = min(paid, frozen.credit)
    promotion_funded = frozen.credit - from_payment + frozen.bonus_credit
    # The system accounts this top-up needs, fetched in one query.
    specs = {"suspense": (AccountKind.SUSPENSE, "")}
    if paid > from_payment:
        specs["fee"] = (AccountKind.REVENUE, "topup")
    if promotion_funded:
        specs["promotion"] = (AccountKind.PROMOTION_EXPENSE, "")
    if restore_fee:
        specs["restore"] = (AccountKind.REVENUE, "restore")
    accounts = dict(
        zip(specs, system_accounts(currency, *specs.values(), known=known), strict=True)
    )
    legs = []
    if from_payment:
        legs.append(Leg(accounts["suspense"], wallet, from_payment, "topup.credit"))
    if paid > from_payment:
        legs.append(Leg(accounts["suspense"], accounts["fee"], paid - from_payment, "topup.fee"))
    if promotion_funded:
        legs.append(Leg(accounts["promotion"], wallet, promotion_funded, "topup.bonus"))
    if restore_fee:
        legs.append(Leg(wallet, accounts["restore"], restore_fee, "restore_fee"))
    return legs


def next_receipt_number(now: datetime) -> str:
    """Take the next number of the year (operator's time zone) in one statement."""
    year = timezone.localtime(now).year
    table = connection.ops.quote_name(ReceiptCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (year, last) VALUES (%s, 1) "  # noqa: S608
            f"ON CONFLICT (year) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [year],
        )
        (number,) = cursor.fetchone()
    return f"{year}-{number:07d}"


@one_transaction
def do_fulfil_order(order: TopUpOrder, *, now: datetime | None = None) -> TopUpOrder:
    """Turn a paid order into balance and validity, exactly once."""
    now = now or clock.now()
    return _fulfil(_lock_order(order.pk), now, {}, [])


def _fulfil(
    order: TopUpOrder, now: datetime, accounts: dict[str, Account], unsaved: list[str]
) -> TopUpOrder:
    """Fulfil the locked order; `unsaved` are its fields changed by the caller
    in this transaction, written with the fulfilment's own."""
    if order.status in (OrderStatus.FULFILLED, OrderStatus.REFUNDED):
        return order
    if order.status != OrderStatus.PAID:
        raise OrderError(_("This order is not paid."), code="not_paid")
    line = lock_line(order.line_id)
    frozen = Quote.from_dict(order.quote)
    status = lifecycle.effective_status(line, now)
    if status in (LineStatus.TERMINATED, LineStatus.INVENTORY):
        return _fail_paid_order(order, now, str(_("The line can no longer be topped up.")), unsaved)
    restore_fee = 0
    if status == LineStatus.SUSPENDED and line.policy.restore_fee:
        restore_fee = min(line.policy.restore_fee, frozen.credit + frozen.bonus_credit)
    post_transfers(
        f"{order.order_ref}:fulfil",
        _fulfil_legs(order, frozen, line, restore_fee, accounts),
        description=f"top-up {order.public_id}",
        now=now,
        savepoint=False,
    )
    change = apply_topup_validity(
        line,
        days=frozen.validity_days,
        now=now,
        actor=f"order:{order.channel}",
        data={
            "order": str(order.public_id),
            "credit": frozen.credit_to_wallet,
            "restore_fee": restore_fee,
        },
    )
    if frozen.promotion_id:
        catalog_actions.use_promotion(order.order_ref)
    order.status = OrderStatus.FULFILLED
    order.fulfilled_at = now
    order.valid_until_after = change.extension.valid_until
    order.days_added = change.extension.days_added
    order.receipt_number = next_receipt_number(now)
    fields = ["status", "fulfilled_at", "valid_until_after", "days_added", "receipt_number"]
    order.save(update_fields=[*dict.fromkeys([*unsaved, *fields])])
    # The receipt message is queued by the outbox's receiver, in this transaction.
    order_fulfilled.send(TopUpOrder, order=order, line=line, quote=frozen, now=now)
    return order


def _fail_paid_order(
    order: TopUpOrder, now: datetime, reason: str, unsaved: list[str]
) -> TopUpOrder:
    """Paid, but impossible to fulfil: the money goes back towards the payer."""
    reverse_group(f"{order.order_ref}:payment", f"{order.order_ref}:payment:return", now=now)
    catalog_actions.release_promotion(order.order_ref)
    order.status = OrderStatus.FAILED
    order.finished_at = now
    order.failure_reason = reason[:200]
    order.refund_due = True
    fields = ["status", "finished_at", "failure_reason", "refund_due"]
    order.save(update_fields=[*dict.fromkeys([*unsaved, *fields])])
    return order


def _close_unpaid(order: TopUpOrder, status: str, reason: str, now: datetime) -> TopUpOrder:
    with transaction.atomic():
        order = _lock_order(order.pk)
        if order.status == status:
            return order
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise OrderError(_("Only an order awaiting payment can be closed."), code="not_pending")
        catalog_actions.release_promotion(order.order_ref)
        order.status = status
        order.finished_at = now
        order.failure_reason = reason[:200]
        order.save(update_fields=["status", "finished_at", "failure_reason"])
    return order


@own_transactions
def do_cancel_order(
    order: TopUpOrder, *, reason: str = "", now: datetime | None = None
) -> TopUpOrder:
    return _close_unpaid(order, OrderStatus.CANCELLED, reason, now or clock.now())


@own_transactions
def do_fail_order(order: TopUpOrder, *, reason: str, now: datetime | None = None) -> TopUpOrder:
    """The payment was declined or abandoned at the provider."""
    return _close_unpaid(order, OrderStatus.FAILED, reason, now or clock.now())


@one_transaction
def do_refund_order(
    order: TopUpOrder,
    *,
    reason: str,
    actor: str,
    now: datetime | None = None,
    completes_partial_refunds: bool = False,
) -> TopUpOrder:
    """Reverse a fulfilled top-up: the ledger postings are reversed (the wallet
    must still hold the credit) and validity follows the line's policy. A
    top-up already refunded in part is only reversed by the refund that
    completes its payment at the provider (`completes_partial_refunds`):
    reversed in the books alone, the rest would be owed with nothing to
    send it."""
    now = now or clock.now()
    order = _lock_order(order.pk)
    if order.status == OrderStatus.REFUNDED:
        return order
    if order.status != OrderStatus.FULFILLED:
        raise OrderError(_("Only a completed top-up can be refunded."), code="not_fulfilled")
    line = lock_line(order.line_id)
    if line.status == LineStatus.TERMINATED:
        raise OrderError(_("The line is terminated; its balance is gone."), code="line_terminated")
    frozen = Quote.from_dict(order.quote)
    # Partial refunds already gave part of the money back: fold them back
    # into the books first, so this reversal leaves them exactly as one full
    # refund would (the money they returned is in the payment reversal).
    partial_keys = _partial_refund_keys(order)
    if partial_keys and not completes_partial_refunds:
        raise OrderError(
            _(
                "This top-up was refunded in part through its payment provider: refund the "
                "rest the same way, from its dispute."
            ),
            code="partly_refunded",
        )
    for key in partial_keys:
        reverse_group(key, f"{key}:folded", now=now)
    try:
        reverse_group(f"{order.order_ref}:fulfil", f"{order.order_ref}:fulfil:reversal", now=now)
    except InsufficientFunds as exc:
        raise OrderError(
            _("The credit from this top-up has already been used; it cannot be refunded."),
            code="credit_used",
        ) from exc
    reverse_group(f"{order.order_ref}:payment", f"{order.order_ref}:payment:reversal", now=now)
    if line.policy.refund_validity_rule == RefundValidityRule.REVOKE:
        revoke_topup_validity(
            line,
            days=frozen.validity_days,
            now=now,
            actor=actor,
            data={"order": str(order.public_id), "reason": reason},
        )
    catalog_actions.release_promotion(order.order_ref, include_used=True)
    order.status = OrderStatus.REFUNDED
    order.refunded_at = now
    order.failure_reason = reason[:200]
    # Settled inside leb (staff, the line's balance, an agent's float): no
    # provider owes anyone money back.
    order.refund_due = order.payment_provider not in INTERNALLY_SETTLED
    order.save(update_fields=["status", "refunded_at", "failure_reason", "refund_due"])
    record(
        actor,
        AuditAction.TOPUP_REFUND,
        f"order:{order.pk}",
        {"reason": reason, "price": order.price, "currency": order.currency},
        now=now,
    )
    return order


def _partial_refund_keys(order: TopUpOrder) -> list[str]:
    prefix = f"{order.order_ref}:refund:"
    keys = TransferGroup.objects.filter(idempotency_key__startswith=prefix).values_list(
        "idempotency_key", flat=True
    )
    return sorted(key for key in keys if not key.endswith(":folded"))


def partial_refund_legs(order: TopUpOrder, amount: int) -> tuple[int, int]:
    """How a partial refund of `amount` splits: (from the line's wallet, from
    top-up fee revenue), in the proportions the payment was split when the
    top-up was fulfilled. The wallet's share is rounded down, so rounding
    never takes more credit than the payment bought."""
    frozen = Quote.from_dict(order.quote)
    from_payment = min(order.price, frozen.credit)
    wallet_share = from_payment * amount // order.price if order.price else 0
    return wallet_share, amount - wallet_share


@one_transaction
def do_refund_order_part(
    order: TopUpOrder,
    *,
    amount: int,
    key: str,
    reason: str,
    actor: str,
    now: datetime | None = None,
) -> TopUpOrder:
    """Give part of a completed top-up's payment back in the books: the line's
    wallet gives back the same share of the credit the payment bought (the
    rest comes out of top-up fee revenue) and the provider's clearing account
    is owed the amount. Validity, the promotion bonus and the order's status
    stay: the top-up still happened. `key` names this refund; repeating it
    changes nothing. The order is due a refund at the provider until the
    provider confirms it."""
    now = now or clock.now()
    order = _lock_order(order.pk)
    if order.status != OrderStatus.FULFILLED:
        raise OrderError(
            _("Only a completed top-up can be refunded in part."), code="not_fulfilled"
        )
    if not 0 < amount < order.price:
        raise OrderError(
            _("A partial refund must be more than zero and less than the price."),
            code="amount_invalid",
        )
    line = lock_line(order.line_id)
    if line.status == LineStatus.TERMINATED:
        raise OrderError(_("The line is terminated; its balance is gone."), code="line_terminated")
    wallet_share, fee_share = partial_refund_legs(order, amount)
    specs = {"clearing": (AccountKind.CLEARING, order.payment_provider)}
    if fee_share:
        specs["fee"] = (AccountKind.REVENUE, "topup")
    accounts = dict(zip(specs, system_accounts(order.currency, *specs.values()), strict=True))
    legs = []
    if wallet_share:
        legs.append(Leg(wallet_for(line), accounts["clearing"], wallet_share, "refund.credit"))
    if fee_share:
        legs.append(Leg(accounts["fee"], accounts["clearing"], fee_share, "refund.fee"))
    try:
        post_transfers(
            f"{order.order_ref}:refund:{key}",
            legs,
            description=f"partial refund {order.public_id}",
            now=now,
        )
    except InsufficientFunds as exc:
        raise OrderError(
            _("The credit from this top-up has already been used; it cannot be refunded."),
            code="credit_used",
        ) from exc
    if not order.refund_due:
        order.refund_due = True
        order.save(update_fields=["refund_due"])
    record(
        actor,
        AuditAction.TOPUP_REFUND_PART,
        f"order:{order.pk}",
        {
            "reason": reason,
            "amount": amount,
            "currency": order.currency,
            "from_wallet": wallet_share,
            "from_fee": fee_share,
            "refund": key,
        },
        now=now,
    )
    return order


@one_transaction
def do_mark_refund_returned(order: TopUpOrder, *, now: datetime | None = None) -> TopUpOrder:
    """The provider has given a refunded order's money back (all of it, or
    every part refunded so far): nothing is due at the provider any more, so
    finance must not refund it again by hand."""
    order = _lock_order(order.pk)
    if order.status in (OrderStatus.REFUNDED, OrderStatus.FULFILLED) and order.refund_due:
        order.refund_due = False
        order.save(update_fields=["refund_due"])
    return order


@one_transaction
def do_mark_refund_due(order: TopUpOrder, *, now: datetime | None = None) -> TopUpOrder:
    """A refund the provider had confirmed failed after all (Stripe can say so
    days later): the money is due to the payer again."""
    order = _lock_order(order.pk)
    if order.status in (OrderStatus.REFUNDED, OrderStatus.FULFILLED) and not order.refund_due:
        order.refund_due = True
        order.save(update_fields=["refund_due"])
    return order


@dataclass
class BatchResult:
    done: int = 0
    errors: int = 0


def expire_unpaid_orders(now: datetime | None = None, *, batch_size: int = 500) -> BatchResult:
    now = now or clock.now()
    result = BatchResult()
    ids = list(
        TopUpOrder.objects.filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for order_id in ids:
        try:
            _close_unpaid(
                TopUpOrder(pk=order_id), OrderStatus.EXPIRED, "payment not received in time", now
            )
            result.done += 1
        except OrderError:
            result.errors += 1  # paid in the meantime: nothing to expire
    return result


def recover_paid_orders(now: datetime | None = None, *, batch_size: int = 200) -> BatchResult:
    """Finish orders that were paid but not fulfilled (a crash in between)."""
    now = now or clock.now()
    cutoff = now - timedelta(seconds=settings.RECOVERY_GRACE_SECONDS)
    result = BatchResult()
    ids = list(
        TopUpOrder.objects.filter(status=OrderStatus.PAID, paid_at__lte=cutoff)
        .order_by("paid_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for order_id in ids:
        try:
            do_fulfil_order(TopUpOrder(pk=order_id), now=now)
            result.done += 1
        except Exception:
            logger.exception("recovery could not fulfil order %s", order_id)
            result.errors += 1
    return result


@own_transactions
def do_admin_topup(
    *,
    line: Line,
    staff: Any,
    reason: str,
    idempotency_key: str,
    plan: Plan | None = None,
    amount: int | None = None,
    now: datetime | None = None,
) -> TopUpOrder:
    """A staff top-up (e.g. goodwill or a payment taken over the counter):
    channel `admin`, paid through the admin clearing account, audited."""
    now = now or clock.now()
    if not reason.strip():
        raise OrderError(_("Give a reason for a manual top-up."), code="reason_required")
    actor = f"staff:{staff.get_username()}"
    with transaction.atomic():
        order = do_create_order(
            line=line,
            channel="admin",
            idempotency_key=idempotency_key,
            plan=plan,
            amount=amount,
            actor=actor,
            now=now,
        )
        if order.status == OrderStatus.FULFILLED:
            return order  # a replay of the same manual top-up
        order = do_pay_and_fulfil(
            order,
            amount=order.price,
            currency=order.currency,
            provider="admin",
            reference=idempotency_key,
            now=now,
        )
        record(
            actor,
            AuditAction.TOPUP_MANUAL,
            f"order:{order.pk}",
            {"line": line.pk, "reason": reason, "price": order.price, "currency": order.currency},
            now=now,
        )
    return order
