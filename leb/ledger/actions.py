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

from leb.common import clock

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


def system_accounts(
    currency: str,
    *specs: tuple[AccountKind | str, str],
    known: dict[str, Account] | None = None,
) -> list[Account]:
    """system_account for several (kind, name) pairs in one query; a missing
    account is created as system_account would. `known` (code to account)
    carries accounts already read in this transaction from one call to the
    next, so they are not read again."""
    known = {} if known is None else known
    codes = [
        (f"{kind}:{name}:{currency}" if name else f"{kind}:{currency}", str(kind))
        for kind, name in specs
    ]
    wanted = [code for code, _k in codes if code not in known]
    if wanted:
        known.update((a.code, a) for a in Account.objects.filter(code__in=wanted))
    accounts = []
    for code, kind in codes:
        account = known.get(code) or get_account(code, kind, currency)
        if account.currency != currency:
            raise InvalidTransfer(f"account {code} is in {account.currency}, not {currency}")
        known[code] = account
        accounts.append(account)
    return accounts


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


def _net_deltas(legs: Sequence[Leg]) -> tuple[dict[int, int], dict[int, Account]]:
    """Net change per account that keeps a running balance."""
    deltas: dict[int, int] = defaultdict(int)
    accounts: dict[int, Account] = {}
    for leg in legs:
        for account, sign in ((leg.debit, -1), (leg.credit, 1)):
            if account.tracks_balance:
                deltas[account.pk] += sign * leg.amount
                accounts[account.pk] = account
    return deltas, accounts


def _transfer(group_id: int, leg: Leg, now: datetime) -> Transfer:
    return Transfer(
        group_id=group_id,
        debit_account=leg.debit,
        credit_account=leg.credit,
        amount=leg.amount,
        currency=leg.debit.currency,
        code=leg.code,
        reverses_id=leg.reverses_id,
        created_at=now,
    )


def post_transfers(
    key: str,
    legs: Sequence[Leg],
    *,
    description: str = "",
    now: datetime | None = None,
    savepoint: bool = True,
) -> TransferGroup:
    """Post `legs` atomically under idempotency `key`.

    Same key and same content returns the group first posted; same key with
    different content raises IdempotencyConflict. Running balances change in
    one conditional UPDATE per account, in account-id order (no deadlocks),
    so a `no_negative` account can never be seen below zero.

    savepoint=False saves two round trips inside a caller's transaction; only
    for callers whose whole transaction fails on any ledger error (fulfilment).
    """
    _validate(legs)
    now = now or clock.now()
    digest = content_hash(legs)
    with transaction.atomic(savepoint=savepoint):
        if connection.vendor == "postgresql":
            return _post_in_one_call(key, legs, digest, description[:200], now)
        group_id = _claim_key(key, digest, description, now)
        if group_id is None:
            existing = TransferGroup.objects.get(idempotency_key=key)
            if existing.content_hash != digest:
                raise IdempotencyConflict(key)
            return existing

        deltas, accounts = _net_deltas(legs)
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

        Transfer.objects.bulk_create([_transfer(group_id, leg, now) for leg in legs])
    group = TransferGroup(
        pk=group_id, idempotency_key=key, content_hash=digest, description=description[:200]
    )
    group.created_at = now
    return group


def _post_in_one_call(
    key: str, legs: Sequence[Leg], digest: str, description: str, now: datetime
) -> TransferGroup:
    """post_transfers on PostgreSQL: one call of `leb_post_transfers`
    (migration ledger.0005), which does what the statements below do."""
    deltas, accounts = _net_deltas(legs)
    changes = sorted((pk, delta) for pk, delta in deltas.items() if delta)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT group_id, existing_hash, short_account FROM leb_post_transfers("
            "%s, %s, %s, %s, %s::bigint[], %s::bigint[], %s::bigint[], %s::text[], "
            "%s::text[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])",
            [
                key,
                digest,
                description,
                now,
                [leg.debit.pk for leg in legs],
                [leg.credit.pk for leg in legs],
                [leg.amount for leg in legs],
                [leg.debit.currency for leg in legs],
                [leg.code for leg in legs],
                [leg.reverses_id for leg in legs],
                [pk for pk, _delta in changes],
                [delta for _pk, delta in changes],
                [_floor(accounts[pk], delta) for pk, delta in changes],
            ],
        )
        group_id, existing_hash, short_account = cursor.fetchone()
    if short_account is not None:
        raise InsufficientFunds(accounts[short_account])
    if existing_hash is not None:
        if existing_hash != digest:
            raise IdempotencyConflict(key)
        return TransferGroup.objects.get(pk=group_id)
    group = TransferGroup(
        pk=group_id, idempotency_key=key, content_hash=digest, description=description
    )
    group.created_at = now
    return group


def _floor(account: Account, delta: int) -> int:
    """The lowest balance a change may start from: an unchecked account
    gets a floor no balance reaches."""
    return -delta if delta < 0 and account.no_negative else -(2**62)


class _Short(Exception):
    pass


def _apply_deltas(deltas: list[tuple[int, int]], accounts: dict[int, Account]) -> None:
    table = connection.ops.quote_name(Account._meta.db_table)
    sql = f"UPDATE {table} SET balance = balance + %s WHERE id = %s AND balance >= %s"  # noqa: S608
    rows = [(delta, pk, _floor(accounts[pk], delta)) for pk, delta in deltas if delta]
    if not rows:
        return
    with connection.cursor() as cursor:
        try:
            with transaction.atomic():
                cursor.executemany(sql, rows)
                if cursor.rowcount != len(rows):
                    raise _Short
        except _Short:
            # Rolled back to the savepoint: find the account, one at a time.
            for row in rows:
                cursor.execute(sql, row)
                if cursor.rowcount != 1:
                    raise InsufficientFunds(accounts[row[1]]) from None


@dataclass(frozen=True)
class Posting:
    """One group for post_transfer_groups: what post_transfers takes."""

    key: str
    legs: Sequence[Leg]
    description: str = ""


def post_transfer_groups(postings: Sequence[Posting], *, now: datetime | None = None) -> int:
    """post_transfers for many groups at once, in a fixed number of statements
    (jobs such as the sweep post hundreds per transaction). The same rules
    hold: a key already posted with the same content is skipped, with other
    content it raises IdempotencyConflict; a no_negative account that would
    go below zero raises InsufficientFunds and nothing is posted.
    Returns how many groups were posted now."""
    if not postings:
        return 0
    now = now or clock.now()
    for posting in postings:
        _validate(posting.legs)
    digests = {posting.key: content_hash(posting.legs) for posting in postings}
    if len(digests) != len(postings):
        raise InvalidTransfer("a key appears twice in one batch")
    table = connection.ops.quote_name(TransferGroup._meta.db_table)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (idempotency_key, content_hash, description, created_at) "  # noqa: S608
                f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(postings))} "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
                [
                    value
                    for posting in postings
                    for value in (posting.key, digests[posting.key], posting.description[:200], now)
                ],
            )
            claimed = {key: group_id for group_id, key in cursor.fetchall()}
        replayed = [posting.key for posting in postings if posting.key not in claimed]
        for key, digest in TransferGroup.objects.filter(idempotency_key__in=replayed).values_list(
            "idempotency_key", "content_hash"
        ):
            if digest != digests[key]:
                raise IdempotencyConflict(key)
        fresh = [posting for posting in postings if posting.key in claimed]
        deltas, accounts = _net_deltas([leg for posting in fresh for leg in posting.legs])
        # One statement per account as in post_transfers, still in account-id
        # order and still checked in the statement itself, sent as one batch.
        _apply_deltas(sorted(deltas.items()), accounts)
        Transfer.objects.bulk_create(
            [_transfer(claimed[posting.key], leg, now) for posting in fresh for leg in posting.legs]
        )
    return len(fresh)


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
