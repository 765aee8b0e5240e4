"""Every write to the ledger goes through `post_transfers` (or `reverse_group`)."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from leb import clock

from .models import Account, AccountKind, Transfer, TransferGroup


class LedgerError(Exception):
    """Base class: the message is safe to show to staff."""


class IdempotencyConflict(LedgerError):
    def __init__(self, key: str) -> None:
        super().__init__(
            _("Idempotency key %(key)s was already used for different transfers.") % {"key": key}
        )
        self.key = key


class InsufficientFunds(LedgerError):
    def __init__(self, account: Account) -> None:
        super().__init__(_("Account %(code)s may not go below zero.") % {"code": account.code})
        self.account = account


class InvalidTransfer(LedgerError):
    pass


@dataclass(frozen=True)
class Leg:
    debit: Account
    credit: Account
    amount: int
    code: str
    reverses_id: int | None = None


def get_account(
    code: str,
    kind: str,
    currency: str,
    *,
    no_negative: bool = False,
    tracks_balance: bool = False,
) -> Account:
    """Fetch or create an account by its code. `no_negative` needs a running balance,
    because the check happens in the statement that changes it."""
    if no_negative and not tracks_balance:
        raise InvalidTransfer("no_negative accounts must track their balance")
    account, _created = Account.objects.get_or_create(
        code=code,
        defaults={
            "kind": kind,
            "currency": currency,
            "no_negative": no_negative,
            "tracks_balance": tracks_balance,
        },
    )
    if account.currency != currency:
        raise InvalidTransfer(f"account {code} is in {account.currency}, not {currency}")
    return account


def system_account(kind: AccountKind | str, currency: str, name: str = "") -> Account:
    """Operator-side accounts (clearing, revenue, expense...): derived balances, no hot row."""
    code = f"{kind}:{name}:{currency}" if name else f"{kind}:{currency}"
    return get_account(code, str(kind), currency)


def content_hash(legs: Sequence[Leg]) -> str:
    payload = [
        [leg.debit.code, leg.credit.code, leg.amount, leg.debit.currency, leg.code, leg.reverses_id]
        for leg in legs
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


def _validate(legs: Sequence[Leg]) -> None:
    if not legs:
        raise InvalidTransfer("a transfer group needs at least one transfer")
    for leg in legs:
        if not isinstance(leg.amount, int) or isinstance(leg.amount, bool) or leg.amount <= 0:
            raise InvalidTransfer(f"transfer amount must be a positive integer, got {leg.amount!r}")
        if leg.debit.pk == leg.credit.pk:
            raise InvalidTransfer("debit and credit accounts must differ")
        if leg.debit.currency != leg.credit.currency:
            raise InvalidTransfer(
                f"currency mismatch: {leg.debit.code} is {leg.debit.currency}, "
                f"{leg.credit.code} is {leg.credit.currency}"
            )


def _claim_key(key: str, digest: str, description: str, now: datetime) -> int | None:
    """Insert the group row, or return None when the key already exists.

    One statement, no savepoint: ON CONFLICT DO NOTHING waits for a concurrent
    holder of the same key to finish, then reports the conflict as "no row".
    """
    table = connection.ops.quote_name(TransferGroup._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (idempotency_key, content_hash, description, created_at) "  # noqa: S608
            "VALUES (%s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            [key, digest, description[:200], now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def post_transfers(
    key: str,
    legs: Sequence[Leg],
    *,
    description: str = "",
    now: datetime | None = None,
) -> TransferGroup:
    """Post `legs` atomically under idempotency `key`.

    Same key and same content returns the group first posted; same key with
    different content raises IdempotencyConflict. Running balances change in
    one conditional UPDATE per account, in account-id order (no deadlocks),
    so a `no_negative` account can never be seen below zero.
    """
    _validate(legs)
    now = now or clock.now()
    digest = content_hash(legs)
    with transaction.atomic():
        group_id = _claim_key(key, digest, description, now)
        if group_id is None:
            existing = TransferGroup.objects.get(idempotency_key=key)
            if existing.content_hash != digest:
                raise IdempotencyConflict(key)
            return existing

        deltas: dict[int, int] = defaultdict(int)
        accounts: dict[int, Account] = {}
        for leg in legs:
            for account, sign in ((leg.debit, -1), (leg.credit, 1)):
                if account.tracks_balance:
                    deltas[account.pk] += sign * leg.amount
                    accounts[account.pk] = account
        for account_id in sorted(deltas):
            delta = deltas[account_id]
            if delta == 0:
                continue
            account = accounts[account_id]
            query = Account.objects.filter(pk=account_id)
            if delta < 0 and account.no_negative:
                query = query.filter(Q(balance__gte=-delta))
            if query.update(balance=F("balance") + delta) != 1:
                raise InsufficientFunds(account)

        Transfer.objects.bulk_create(
            [
                Transfer(
                    group_id=group_id,
                    debit_account=leg.debit,
                    credit_account=leg.credit,
                    amount=leg.amount,
                    currency=leg.debit.currency,
                    code=leg.code,
                    reverses_id=leg.reverses_id,
                    created_at=now,
                )
                for leg in legs
            ]
        )
    group = TransferGroup(
        pk=group_id, idempotency_key=key, content_hash=digest, description=description[:200]
    )
    group.created_at = now
    return group


def reverse_group(
    original_key: str,
    key: str,
    *,
    description: str = "",
    now: datetime | None = None,
) -> TransferGroup:
    """Post, under `key`, one reversing transfer for every transfer of the group
    posted under `original_key`. A transfer can be reversed only once."""
    transfers = list(
        Transfer.objects.filter(group__idempotency_key=original_key)
        .select_related("debit_account", "credit_account")
        .order_by("pk")
    )
    if not transfers:
        raise InvalidTransfer(f"no transfers under key {original_key}")
    legs = [
        Leg(
            debit=t.credit_account,
            credit=t.debit_account,
            amount=t.amount,
            code=f"reversal:{t.code}"[:40],
            reverses_id=t.pk,
        )
        for t in transfers
    ]
    return post_transfers(key, legs, description=description, now=now)
