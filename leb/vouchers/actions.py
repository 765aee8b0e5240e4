"""Voucher writes: generate batches, distribute, activate, block, expire, redeem.

The books (see docs/vouchers.md):

- activation (the distributor takes the cards and owes us their value):
  debit `clearing:voucher-sales:<distributor>:<CUR>` (a receivable),
  credit `voucher_liability:<CUR>` (what we owe the card holders);
- redemption, under idempotency key `voucher:<serial>:redeem`:
  debit `voucher_liability`, credit `clearing:voucher` (the voucher "pays"),
  then the ordinary top-up path, `do_pay_and_fulfil`: clearing:voucher to
  suspense, then suspense to the line's wallet. When the
  order's price differs from the voucher's value (a discount promotion, a
  plan whose price changed since printing), the difference is booked to
  `revenue:voucher-surplus` or `promotion_expense`, so clearing:voucher
  always returns to zero;
- blocking an active voucher reverses its activation (liability back to the
  distributor's receivable); expiry books the liability as breakage
  (`revenue:voucher-breakage`).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.numbers import get_currency_precision, is_currency
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.catalog.models import Channel, FreeAmountRule, Plan
from leb.catalog.quotes import QuoteError
from leb.common import clock
from leb.common.transactions import one_transaction, own_transactions
from leb.ledger.actions import Leg, post_transfers, system_account, system_accounts
from leb.ledger.models import AccountKind
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.security import lockouts
from leb.topups.actions import OrderError, do_create_order, do_pay_and_fulfil
from leb.topups.models import OrderStatus, TopUpOrder

from . import pins
from .models import (
    BatchState,
    Distributor,
    DistributorPayment,
    Voucher,
    VoucherBatch,
    VoucherState,
)

logger = logging.getLogger(__name__)

LOCKOUT_SCOPE = "voucher_pin"
PROVIDER = "voucher"
CHUNK = 2000
LIVE_STATES = (VoucherState.GENERATED, VoucherState.DISTRIBUTED, VoucherState.ACTIVE)
UNSOLD_STATES = (VoucherState.GENERATED, VoucherState.DISTRIBUTED)
LOCKOUT_KEY_NAMES = ("line", "caller", "user", "ip")


class VoucherError(ValidationError):
    """A refused staff operation on vouchers (generation, activation, blocking)."""


class VoucherRefused(ValidationError):
    """A refused redemption. `.code` is one of pin_format, pin_invalid,
    voucher_expired, voucher_blocked, currency_mismatch, line_not_eligible,
    locked, voucher_unavailable, adds_nothing (the voucher would add no days and
    no credit to this line under its validity cap: it stays unused); the message is translated for the person
    entering the PIN. With code `locked`, `.retry_after` is the number of
    seconds the lock still runs."""

    retry_after: int = 0


@dataclass(frozen=True)
class Redemption:
    voucher: Voucher
    order: TopUpOrder
    line: Line
    # True when this line had already redeemed this PIN: nothing new was written.
    replayed: bool = False


# --- Messages -------------------------------------------------------------------

PIN_FORMAT = _("A voucher PIN has 16 digits. Check the PIN on the card and enter it again.")
PIN_INVALID = _(
    "This PIN is not valid. Check the PIN on the card; if the card was just bought, "
    "ask the seller whether it was activated."
)


VOUCHER_ADDS_NOTHING = _(
    "This voucher would add no days to this line now: the line is already valid until "
    "the most it allows, and the voucher gives no credit. Your voucher was not used: "
    "keep it and redeem it later."
)


def _refused(message: Any, code: str, **params: Any) -> VoucherRefused:
    return VoucherRefused(message, code=code, params=params or None)


# --- Accounts -------------------------------------------------------------------


def liability_account(currency: str) -> Any:
    return system_account(AccountKind.VOUCHER_LIABILITY, currency)


def receivable_account(distributor: Distributor, currency: str) -> Any:
    return system_account(AccountKind.CLEARING, currency, f"voucher-sales:{distributor.code}")


def payments_account(currency: str) -> Any:
    """Where distributors' payments arrive (the bank), as the agent deposits' clearing."""
    return system_account(AccountKind.CLEARING, currency, "voucher-payments")


# --- Distributor payments ---------------------------------------------------------


@one_transaction
def do_record_distributor_payment(
    distributor: Distributor,
    amount: int,
    currency: str,
    reference: str,
    *,
    actor: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> DistributorPayment:
    """Book money a distributor paid against its receivable: debit the
    payments clearing (the bank received it), credit the receivable. The same
    key with the same payment returns the first; a different payment under
    the key, a reference already used, or more than the distributor owes is
    refused and nothing is written."""
    from leb.ledger.queries import balance_of

    now = now or clock.now()
    currency = (currency or "").strip().upper()
    reference = (reference or "").strip()
    if not is_currency(currency):
        raise VoucherError(
            _("%(value)s is not an ISO 4217 currency code."),
            code="currency_invalid",
            params={"value": currency},
        )
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise VoucherError(_("The amount must be more than zero."), code="amount_invalid")
    if not reference:
        raise VoucherError(_("Give the payment's reference."), code="reference_required")
    # Refused, not cut short: a cut reference or key would not find the
    # payment it names when the form is sent again.
    if len(reference) > 100:
        raise VoucherError(
            _("The payment's reference is too long (at most 100 characters)."),
            code="reference_too_long",
        )
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("an idempotency key of 1 to 200 characters is required")
    # One payment at a time per distributor: the owed check and the posting
    # must see the same receivable.
    distributor = Distributor.objects.select_for_update().get(pk=distributor.pk)
    existing = DistributorPayment.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if (existing.distributor_id, existing.amount, existing.currency, existing.reference) == (
            distributor.pk,
            amount,
            currency,
            reference,
        ):
            return existing
        raise VoucherError(
            _("This form was already submitted with other details; reload it and try again."),
            code="idempotency_conflict",
        )
    if DistributorPayment.objects.filter(distributor=distributor, reference=reference).exists():
        raise VoucherError(
            _("A payment with this reference is already recorded for this distributor."),
            code="reference_taken",
        )
    receivable = receivable_account(distributor, currency)
    owed = -balance_of(receivable)
    if amount > owed:
        raise VoucherError(
            _("%(distributor)s owes %(owed)s; a payment of %(amount)s is more than that."),
            code="more_than_owed",
            params={
                "distributor": distributor.name,
                "owed": f"{currency} {major_units(max(owed, 0), currency)}",
                "amount": f"{currency} {major_units(amount, currency)}",
            },
        )
    payment = DistributorPayment.objects.create(
        distributor=distributor,
        amount=amount,
        currency=currency,
        reference=reference,
        idempotency_key=idempotency_key,
        recorded_by=actor[:100],
        created_at=now,
    )
    post_transfers(
        f"distributor-payment:{payment.pk}",
        [Leg(payments_account(currency), receivable, amount, "voucher.payment")],
        description=f"payment from {distributor.code}: {reference}"[:200],
        now=now,
    )
    record(
        actor,
        AuditAction.DISTRIBUTOR_PAYMENT,
        f"distributor:{distributor.pk}",
        {"amount": amount, "currency": currency, "reference": reference, "owed_before": owed},
        now=now,
    )
    return payment


# --- Generation -----------------------------------------------------------------


@dataclass(frozen=True)
class GeneratedBatch:
    batch: VoucherBatch
    path: Path
    count: int


def expiry_moment(expires_on: date) -> datetime:
    """A voucher is usable through its expiry date, in the operator's time zone."""
    return timezone.make_aware(datetime.combine(expires_on + timedelta(days=1), time.min))


def major_units(amount: int, currency: str) -> str:
    digits = get_currency_precision(currency)
    return f"{Decimal(amount).scaleb(-digits):.{digits}f}"


def _check_plan(plan: Plan, currency: str) -> None:
    if plan.currency != currency:
        raise VoucherError(
            _("The plan is priced in %(plan)s, not %(currency)s."),
            code="plan_currency",
            params={"plan": plan.currency, "currency": currency},
        )
    if not plan.is_active or Channel.VOUCHER not in (plan.channels or []):
        raise VoucherError(
            _("The plan %(code)s is not on sale on the voucher channel."),
            code="plan_channel",
            params={"code": plan.code},
        )


def _check_face_value(value: int, currency: str) -> None:
    rule = FreeAmountRule.objects.filter(currency=currency, is_active=True).first()
    if rule is None or Channel.VOUCHER not in (rule.channels or []):
        raise VoucherError(
            _(
                "Top-ups of a free amount in %(currency)s are not sold on the voucher "
                "channel: make a plan batch instead."
            ),
            code="amount_unavailable",
            params={"currency": currency},
        )
    if not rule.min_amount <= value <= rule.max_amount:
        raise VoucherError(
            _("The value must be between %(min)s and %(max)s (minor units of %(currency)s)."),
            code="amount_range",
            params={"min": rule.min_amount, "max": rule.max_amount, "currency": currency},
        )


def _validate_batch(
    *,
    code: str,
    quantity: int,
    expires_on: date,
    currency: str | None,
    value: int | None,
    plan: Plan | None,
    out: Path,
    now: datetime,
) -> tuple[str, int]:
    """(currency, value) of a valid request; VoucherError otherwise."""
    if not pins.BATCH_CODE.fullmatch(code):
        raise VoucherError(
            _("A batch code has 2 to 12 upper-case letters or digits."), code="code_format"
        )
    if VoucherBatch.objects.filter(code=code).exists():
        raise VoucherError(
            _("There is already a batch %(code)s."), code="code_taken", params={"code": code}
        )
    if not 1 <= quantity <= pins.MAX_QUANTITY:
        raise VoucherError(
            _("The quantity must be between 1 and %(max)d."),
            code="quantity_range",
            params={"max": pins.MAX_QUANTITY},
        )
    if (plan is None) == (value is None):
        raise VoucherError(_("Give either a face value or a plan."), code="value_or_plan")
    currency = (currency or (plan.currency if plan else "")).upper()
    if not currency or not is_currency(currency):
        raise VoucherError(_("Give a valid ISO 4217 currency code."), code="currency_invalid")
    if plan is not None:
        _check_plan(plan, currency)
        value = plan.price
    else:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise VoucherError(_("The value must be greater than zero."), code="value_invalid")
        _check_face_value(value, currency)
    if expiry_moment(expires_on) <= now + timedelta(days=1):
        raise VoucherError(_("The expiry date must be in the future."), code="expiry_past")
    if out.exists():
        raise VoucherError(
            _("The export file %(path)s already exists; choose a new name."),
            code="out_exists",
            params={"path": str(out)},
        )
    if not out.parent.is_dir():
        raise VoucherError(
            _("The folder %(path)s does not exist."),
            code="out_folder",
            params={"path": str(out.parent)},
        )
    assert value is not None
    return currency, value


def _fresh_pins(count: int, with_check_digit: bool) -> dict[str, str]:
    """{hash: pin} of `count` PINs unused in this chunk and in the database."""
    found: dict[str, str] = {}
    while len(found) < count:
        wanted = count - len(found)
        candidates = {}
        for _i in range(wanted):
            pin = pins.new_pin(with_check_digit=with_check_digit)
            candidates[pins.hash_pin(pin)] = pin
        taken = set(
            Voucher.objects.filter(pin_hash__in=list(candidates)).values_list("pin_hash", flat=True)
        )
        for digest, pin in candidates.items():
            if digest not in taken and digest not in found:
                found[digest] = pin
    return found


def _open_export(path: Path) -> Any:
    # Exclusive create, readable by the owner only: it holds clear PINs.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


@own_transactions
def do_generate_batch(
    *,
    code: str,
    distributor: Distributor,
    quantity: int,
    expires_on: date,
    out: Path | str,
    currency: str | None = None,
    value: int | None = None,
    plan: Plan | None = None,
    luhn: bool = False,
    actor: str,
    now: datetime | None = None,
    progress: Callable[[int], object] | None = None,
) -> GeneratedBatch:
    """Make a batch of `quantity` vouchers and write the printer's file (CSV:
    serial, pin, value, currency, expires). The file is the only place the
    clear PINs ever exist; it is written once, here, and can never be made
    again. Nothing is kept if anything fails (the file is removed too)."""
    now = now or clock.now()
    out = Path(out)
    code = (code or "").strip().upper()
    currency, value = _validate_batch(
        code=code,
        quantity=quantity,
        expires_on=expires_on,
        currency=currency,
        value=value,
        plan=plan,
        out=out,
        now=now,
    )
    expires_at = expiry_moment(expires_on)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with transaction.atomic(), _open_export(partial) as stream:
            batch = VoucherBatch.objects.create(
                code=code,
                distributor=distributor,
                currency=currency,
                value=value,
                plan=plan,
                quantity=quantity,
                luhn=luhn,
                expires_at=expires_at,
                created_at=now,
                created_by=actor,
                exported_at=now,
                export_name=out.name,
            )
            writer = csv.writer(stream)
            writer.writerow(["serial", "pin", "value", "currency", "plan", "expires"])
            shown_value = major_units(value, currency)
            for start in range(1, quantity + 1, CHUNK):
                numbers = range(start, min(start + CHUNK, quantity + 1))
                fresh = _fresh_pins(len(numbers), luhn)
                rows = [
                    Voucher(
                        batch=batch,
                        number=number,
                        serial=pins.make_serial(code, number),
                        pin_hash=digest,
                        expires_at=expires_at,
                        state_changed_at=now,
                    )
                    for number, digest in zip(numbers, fresh, strict=True)
                ]
                Voucher.objects.bulk_create(rows)
                writer.writerows(
                    [
                        row.serial,
                        fresh[row.pin_hash],
                        shown_value,
                        currency,
                        plan.code if plan else "",
                        expires_on.isoformat(),
                    ]
                    for row in rows
                )
                if progress is not None:
                    progress(len(rows))
            record(
                actor,
                AuditAction.VOUCHER_BATCH_GENERATE,
                f"voucher_batch:{batch.pk}",
                {
                    "code": code,
                    "distributor": distributor.code,
                    "quantity": quantity,
                    "value": value,
                    "currency": currency,
                    "plan": plan.code if plan else "",
                    "luhn": luhn,
                    "expires_on": expires_on.isoformat(),
                    "export": out.name,
                },
                now=now,
            )
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return GeneratedBatch(batch=batch, path=out, count=quantity)


# --- Distribution, activation, blocking, expiry --------------------------------


def _lock_batch(batch_id: int) -> VoucherBatch:
    return (
        VoucherBatch.objects.select_for_update(of=("self",))
        .select_related("distributor")
        .get(pk=batch_id)
    )


def _number_range(first: int | None, last: int | None) -> Q:
    condition = Q()
    if first is not None:
        condition &= Q(number__gte=first)
    if last is not None:
        condition &= Q(number__lte=last)
    return condition


@one_transaction
def do_distribute_batch(
    batch: VoucherBatch, *, actor: str, now: datetime | None = None
) -> VoucherBatch:
    """The printed cards went to the distributor. No money moves yet."""
    now = now or clock.now()
    batch = _lock_batch(batch.pk)
    if batch.state != BatchState.GENERATED:
        return batch
    count = batch.vouchers.filter(state=VoucherState.GENERATED).update(
        state=VoucherState.DISTRIBUTED, state_changed_at=now
    )
    batch.state = BatchState.DISTRIBUTED
    batch.save(update_fields=["state"])
    record(
        actor,
        AuditAction.VOUCHER_BATCH_DISTRIBUTE,
        f"voucher_batch:{batch.pk}",
        {"code": batch.code, "vouchers": count},
        now=now,
    )
    return batch


@one_transaction
def do_activate_batch(
    batch: VoucherBatch,
    *,
    actor: str,
    first: int | None = None,
    last: int | None = None,
    now: datetime | None = None,
) -> int:
    """Make the unsold vouchers of the batch (or of numbers first..last)
    redeemable, and book their value: the distributor owes it, we owe the
    card holders. Returns how many were activated (0 on a repeat)."""
    now = now or clock.now()
    batch = _lock_batch(batch.pk)
    if batch.expires_at <= now:
        raise VoucherError(
            _("Batch %(code)s has expired; it cannot be activated."),
            code="batch_expired",
            params={"code": batch.code},
        )
    pending = batch.vouchers.filter(_number_range(first, last), state__in=UNSOLD_STATES)
    span = pending.aggregate(n=Count("pk"), low=Min("number"), high=Max("number"))
    count = span["n"]
    if not count:
        return 0
    pending.update(state=VoucherState.ACTIVE, state_changed_at=now)
    post_transfers(
        f"voucher-batch:{batch.pk}:activate:{span['low']}-{span['high']}",
        [
            Leg(
                receivable_account(batch.distributor, batch.currency),
                liability_account(batch.currency),
                count * batch.value,
                "voucher.sale",
            )
        ],
        description=f"vouchers {batch.code} activated",
        now=now,
    )
    if batch.state != BatchState.ACTIVE:
        batch.state = BatchState.ACTIVE
        batch.save(update_fields=["state"])
    record(
        actor,
        AuditAction.VOUCHER_BATCH_ACTIVATE,
        f"voucher_batch:{batch.pk}",
        {
            "code": batch.code,
            "first": pins.make_serial(batch.code, span["low"]),
            "last": pins.make_serial(batch.code, span["high"]),
            "vouchers": count,
            "value": count * batch.value,
            "currency": batch.currency,
        },
        now=now,
    )
    return count


@dataclass(frozen=True)
class SerialRange:
    batch: VoucherBatch
    first: int
    last: int

    @property
    def label(self) -> str:
        return (
            f"{pins.make_serial(self.batch.code, self.first)} … "
            f"{pins.make_serial(self.batch.code, self.last)}"
        )


def serial_range(first_serial: str, last_serial: str) -> SerialRange:
    """Two serials of one batch, in order; VoucherError otherwise."""
    first = pins.parse_serial(first_serial)
    last = pins.parse_serial(last_serial or first_serial)
    if first is None or last is None:
        raise VoucherError(
            _("Enter serials as printed, e.g. HK2606-0000018 (the last digit is a check digit)."),
            code="serial_format",
        )
    if first.batch_code != last.batch_code:
        raise VoucherError(
            _("The first and last serial must belong to the same batch."), code="serial_batches"
        )
    if first.number > last.number:
        raise VoucherError(
            _("The first serial must not come after the last one."), code="serial_order"
        )
    batch = VoucherBatch.objects.filter(code=first.batch_code).first()
    if batch is None:
        raise VoucherError(
            _("There is no batch %(code)s."),
            code="batch_unknown",
            params={"code": first.batch_code},
        )
    return SerialRange(batch, first.number, last.number)


@dataclass(frozen=True)
class BlockResult:
    blocked: int
    released: int  # value taken off the voucher liability (minor units)


@own_transactions
def do_block_vouchers(
    span: SerialRange, *, reason: str, actor: str, now: datetime | None = None
) -> BlockResult:
    """Block the not-yet-used vouchers in a serial range (lost or stolen
    stock, a disputed sale). Redeemed and expired ones stay as they are.
    Active ones had been sold: their value goes back to the distributor."""
    now = now or clock.now()
    reason = (reason or "").strip()
    if not reason:
        raise VoucherError(_("Give a reason for blocking."), code="reason_required")
    with transaction.atomic():
        batch = _lock_batch(span.batch.pk)
        targets = batch.vouchers.filter(_number_range(span.first, span.last), state__in=LIVE_STATES)
        span_all = targets.aggregate(n=Count("pk"), low=Min("number"), high=Max("number"))
        if not span_all["n"]:
            return BlockResult(0, 0)
        active = targets.filter(state=VoucherState.ACTIVE).count()
        targets.update(state=VoucherState.BLOCKED, state_changed_at=now)
        released = active * batch.value
        if released:
            post_transfers(
                f"voucher-batch:{batch.pk}:block:{span_all['low']}-{span_all['high']}",
                [
                    Leg(
                        liability_account(batch.currency),
                        receivable_account(batch.distributor, batch.currency),
                        released,
                        "voucher.block",
                    )
                ],
                description=f"vouchers {batch.code} blocked",
                now=now,
            )
        record(
            actor,
            AuditAction.VOUCHER_BLOCK,
            f"voucher_batch:{batch.pk}",
            {
                "code": batch.code,
                "first": pins.make_serial(batch.code, span.first),
                "last": pins.make_serial(batch.code, span.last),
                "vouchers": span_all["n"],
                "active": active,
                "released": released,
                "currency": batch.currency,
                "reason": reason,
            },
            now=now,
        )
    return BlockResult(span_all["n"], released)


@dataclass
class ExpiryResult:
    vouchers: int = 0
    breakage: int = 0


def expire_vouchers(now: datetime | None = None, *, batch_size: int = 50) -> ExpiryResult:
    """Mark vouchers past their expiry as expired; the value of sold ones
    becomes breakage revenue. Idempotent; the periodic job's body."""
    now = now or clock.now()
    result = ExpiryResult()
    batch_ids = list(
        Voucher.objects.filter(state__in=LIVE_STATES, expires_at__lte=now)
        .values_list("batch_id", flat=True)
        .distinct()[:batch_size]
    )
    for batch_id in sorted(batch_ids):
        with transaction.atomic():
            batch = _lock_batch(batch_id)
            due = batch.vouchers.filter(state__in=LIVE_STATES, expires_at__lte=now)
            span = due.aggregate(n=Count("pk"), low=Min("number"), high=Max("number"))
            if not span["n"]:
                continue
            active = due.filter(state=VoucherState.ACTIVE).count()
            due.update(state=VoucherState.EXPIRED, state_changed_at=now)
            breakage = active * batch.value
            if breakage:
                post_transfers(
                    f"voucher-batch:{batch.pk}:expire:{span['low']}-{span['high']}",
                    [
                        Leg(
                            liability_account(batch.currency),
                            system_account(AccountKind.REVENUE, batch.currency, "voucher-breakage"),
                            breakage,
                            "voucher.breakage",
                        )
                    ],
                    description=f"vouchers {batch.code} expired",
                    now=now,
                )
            record(
                "system:vouchers",
                AuditAction.VOUCHER_EXPIRE,
                f"voucher_batch:{batch.pk}",
                {
                    "code": batch.code,
                    "vouchers": span["n"],
                    "breakage": breakage,
                    "currency": batch.currency,
                },
                now=now,
            )
            result.vouchers += span["n"]
            result.breakage += breakage
    return result


# --- Redemption -----------------------------------------------------------------


def _lockout_keys(keys: Mapping[str, str]) -> list[str]:
    return [f"{name}:{keys[name]}" for name in LOCKOUT_KEY_NAMES if keys.get(name)]


def _luhn_enforced(now: datetime) -> bool:
    """A Luhn failure proves a typo only when no redeemable batch lacks the
    check digit; otherwise it might be a real PIN of such a batch."""
    return not VoucherBatch.objects.filter(
        luhn=False, state=BatchState.ACTIVE, expires_at__gt=now
    ).exists()


def _check_pin_format(pin: str, now: datetime) -> None:
    if not pins.has_pin_shape(pin) or (not pins.luhn_ok(pin) and _luhn_enforced(now)):
        raise _refused(PIN_FORMAT, "pin_format")


def _check_not_locked(keys: list[str], now: datetime) -> None:
    wait = lockouts.locked_for(LOCKOUT_SCOPE, keys, now)
    if wait is not None:
        minutes = max(1, -(-int(wait.total_seconds()) // 60))
        exc = _refused(
            _(
                "Too many wrong PINs. For your security, voucher entry is locked "
                "for %(minutes)d more minutes."
            ),
            "locked",
            minutes=minutes,
        )
        exc.retry_after = max(1, int(wait.total_seconds()))
        raise exc


def _failure(
    keys: list[str], now: datetime, message: Any, code: str, **params: Any
) -> VoucherRefused:
    """Count a failed attempt against every key, then refuse."""
    lockouts.register_failure(LOCKOUT_SCOPE, keys, now)
    return _refused(message, code, **params)


def _check_line(line: Line, now: datetime) -> None:
    if lifecycle.effective_status(line, now) in (LineStatus.TERMINATED, LineStatus.INVENTORY):
        raise _refused(
            _("This line cannot take a voucher: it is not in service."), "line_not_eligible"
        )


def _replay(voucher: Voucher, line: Line) -> Redemption:
    assert voucher.order is not None
    return Redemption(voucher=voucher, order=voucher.order, line=line, replayed=True)


def _payment_legs(voucher: Voucher, order: TopUpOrder) -> list[Leg]:
    batch = voucher.batch
    currency = batch.currency
    specs: dict[str, tuple[AccountKind, str]] = {
        "liability": (AccountKind.VOUCHER_LIABILITY, ""),
        "clearing": (AccountKind.CLEARING, PROVIDER),
    }
    if batch.value > order.price:
        specs["difference"] = (AccountKind.REVENUE, "voucher-surplus")
    elif order.price > batch.value:
        specs["difference"] = (AccountKind.PROMOTION_EXPENSE, "")
    accounts = dict(zip(specs, system_accounts(currency, *specs.values()), strict=True))
    legs = [Leg(accounts["liability"], accounts["clearing"], batch.value, "voucher.redeem")]
    if batch.value > order.price:
        legs.append(
            Leg(
                accounts["clearing"],
                accounts["difference"],
                batch.value - order.price,
                "voucher.surplus",
            )
        )
    elif order.price > batch.value:
        legs.append(
            Leg(
                accounts["difference"],
                accounts["clearing"],
                order.price - batch.value,
                "voucher.shortfall",
            )
        )
    return legs


_LINE_CODES = ("line_terminated", "line_inventory", "line_not_topupable")


def _create_order(
    voucher: Voucher, line: Line, channel: str, customer: Any, now: datetime
) -> TopUpOrder:
    batch = voucher.batch
    try:
        return do_create_order(
            line=line,
            channel=Channel.VOUCHER,
            idempotency_key=f"voucher:{voucher.serial}:redeem",
            plan=batch.plan,
            amount=None if batch.plan_id else batch.value,
            customer=customer,
            actor=f"voucher:{channel}",
            now=now,
        )
    except (QuoteError, OrderError) as exc:
        if getattr(exc, "code", "") == "adds_nothing":
            # A voucher is prepaid: rather than spend it for nothing, keep it.
            raise _refused(VOUCHER_ADDS_NOTHING, "adds_nothing") from exc
        if getattr(exc, "code", "") in _LINE_CODES:
            raise _refused(
                _("This line cannot take a voucher: it is not in service."), "line_not_eligible"
            ) from exc
        logger.warning("voucher %s cannot be priced: %s", voucher.serial, exc)
        raise _refused(
            _(
                "This voucher cannot be used at the moment. Please contact support "
                "with the serial number printed on the card."
            ),
            "voucher_unavailable",
        ) from exc


@own_transactions
def do_redeem_voucher(
    *,
    line: Line,
    pin: str,
    channel: str,
    lockout_keys: Mapping[str, str],
    now: datetime | None = None,
    customer: Any = None,
) -> Redemption:
    """Top up `line` with the voucher whose PIN was entered on `channel`
    (web, api, ivr, ussd).

    Order of checks: the PIN's shape (and Luhn digit, see _luhn_enforced) is
    checked first and never counts as a failure; then a lock on any of
    `lockout_keys` refuses before the PIN is looked at; then an unknown PIN,
    or one redeemed by another line, counts as a failure with one message.
    A PIN this line already redeemed returns the first redemption. Must not
    run inside a transaction the caller rolls back on refusal, or the
    failure count is lost.
    """
    now = now or clock.now()
    keys = _lockout_keys(lockout_keys)
    digits = pins.normalize_pin(pin)
    _check_pin_format(digits, now)
    _check_not_locked(keys, now)
    _check_line(line, now)
    digest = pins.hash_pin(digits)
    voucher = Voucher.objects.select_related("batch", "order").filter(pin_hash=digest).first()
    if voucher is None:
        raise _failure(keys, now, PIN_INVALID, "pin_invalid")
    if voucher.state == VoucherState.REDEEMED:
        if voucher.line_id == line.pk:
            return _replay(voucher, line)
        raise _failure(keys, now, PIN_INVALID, "pin_invalid")
    if voucher.state == VoucherState.BLOCKED:
        raise _failure(
            keys,
            now,
            _("This voucher has been blocked. Please contact the seller or our support."),
            "voucher_blocked",
        )
    if voucher.state == VoucherState.EXPIRED or voucher.expires_at <= now:
        last_day = timezone.localdate(voucher.expires_at - timedelta(days=1))
        raise _failure(
            keys,
            now,
            _("This voucher expired on %(date)s and can no longer be used."),
            "voucher_expired",
            date=formats.date_format(last_day, "DATE_FORMAT"),
        )
    if voucher.state != VoucherState.ACTIVE:
        raise _failure(keys, now, PIN_INVALID, "pin_invalid")
    if voucher.batch.currency != line.currency:
        raise _refused(
            _("This voucher is in %(voucher)s but the line uses %(line)s."),
            "currency_mismatch",
            voucher=voucher.batch.currency,
            line=line.currency,
        )
    with transaction.atomic():
        # The one statement that decides: a voucher is redeemed at most once.
        claimed = Voucher.objects.filter(
            pin_hash=digest, state=VoucherState.ACTIVE, expires_at__gt=now
        ).update(
            state=VoucherState.REDEEMED,
            state_changed_at=now,
            redeemed_at=now,
            redeemed_channel=channel[:10],
            line=line,
        )
        if claimed:
            order = _create_order(voucher, line, channel, customer, now)
            post_transfers(
                f"voucher:{voucher.serial}:redeem",
                _payment_legs(voucher, order),
                description=f"voucher {voucher.serial}",
                now=now,
            )
            order = do_pay_and_fulfil(
                order,
                amount=order.price,
                currency=order.currency,
                provider=PROVIDER,
                reference=voucher.serial,
                now=now,
            )
            if order.status != OrderStatus.FULFILLED:
                # The line left service between the checks and the lock: undo it all.
                raise _refused(
                    _("This line cannot take a voucher: it is not in service."),
                    "line_not_eligible",
                )
            Voucher.objects.filter(pk=voucher.pk).update(order=order)
    if not claimed:
        # Someone redeemed it (or it expired) between the read and the UPDATE.
        voucher = Voucher.objects.select_related("batch", "order").get(pk=voucher.pk)
        if voucher.state == VoucherState.REDEEMED and voucher.line_id == line.pk:
            return _replay(voucher, line)
        raise _failure(keys, now, PIN_INVALID, "pin_invalid")
    # A right PIN clears the count of who entered it, not of the network address.
    lockouts.register_success(LOCKOUT_SCOPE, [k for k in keys if not k.startswith("ip:")])
    voucher.refresh_from_db()
    logger.info("voucher %s redeemed on line %s via %s", voucher.serial, line.pk, channel)
    return Redemption(voucher=voucher, order=order, line=line)
