"""Reads of the ledger, including the invariant check behind `leb ledger verify`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum

from .models import Account, Transfer, TransferGroup


def derived_balances(account_ids: list[int] | None = None) -> dict[int, int]:
    """credits - debits per account, summed from transfers."""
    credits = Transfer.objects.values("credit_account").annotate(total=Sum("amount"))
    debits = Transfer.objects.values("debit_account").annotate(total=Sum("amount"))
    if account_ids is not None:
        credits = credits.filter(credit_account__in=account_ids)
        debits = debits.filter(debit_account__in=account_ids)
    balances: dict[int, int] = defaultdict(int)
    for row in credits:
        balances[row["credit_account"]] += row["total"]
    for row in debits:
        balances[row["debit_account"]] -= row["total"]
    return balances


def balance_of(account: Account) -> int:
    if account.tracks_balance:
        return Account.objects.values_list("balance", flat=True).get(pk=account.pk)
    return derived_balances([account.pk]).get(account.pk, 0)


def balance_by_code(code: str) -> int:
    account = Account.objects.filter(code=code).first()
    return balance_of(account) if account else 0


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    accounts: int = 0
    transfers: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_ledger() -> VerifyReport:
    """Check every invariant the ledger promises. Set-based queries only, so it
    scales with the number of accounts, not a loop over transfers."""
    report = VerifyReport()
    derived = derived_balances()
    accounts = list(Account.objects.all())
    report.accounts = len(accounts)
    report.transfers = Transfer.objects.count()
    per_currency: dict[str, int] = defaultdict(int)
    for account in accounts:
        computed = derived.get(account.pk, 0)
        per_currency[account.currency] += computed
        if account.tracks_balance and account.balance != computed:
            report.problems.append(
                f"account {account.code}: running balance {account.balance} "
                f"!= sum of transfers {computed}"
            )
        if not account.tracks_balance and account.balance != 0:
            report.problems.append(
                f"account {account.code}: untracked account has a stored balance"
            )
        if account.no_negative and computed < 0:
            report.problems.append(f"account {account.code}: no_negative account is at {computed}")
    report.totals = dict(per_currency)
    for currency, total in per_currency.items():
        if total != 0:
            report.problems.append(f"currency {currency}: balances sum to {total}, not 0")

    mismatched = Transfer.objects.filter(
        ~Q(currency=F("debit_account__currency")) | ~Q(currency=F("credit_account__currency"))
    ).values_list("pk", flat=True)[:20]
    for pk in mismatched:
        report.problems.append(f"transfer {pk}: currency differs from its accounts")
    for pk in Transfer.objects.filter(amount__lte=0).values_list("pk", flat=True)[:20]:
        report.problems.append(f"transfer {pk}: amount is not positive")
    bad_reversals = Transfer.objects.filter(reverses__isnull=False).exclude(
        amount=F("reverses__amount"),
        debit_account=F("reverses__credit_account"),
        credit_account=F("reverses__debit_account"),
    )
    for pk in bad_reversals.values_list("pk", flat=True)[:20]:
        report.problems.append(f"transfer {pk}: does not mirror the transfer it reverses")
    empty = TransferGroup.objects.annotate(n=Count("transfers")).filter(n=0)
    for key in empty.values_list("idempotency_key", flat=True)[:20]:
        report.problems.append(f"group {key}: has no transfers")
    return report
