"""Reads of the ledger, including the invariant check behind `leb ledger verify`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.common import clock

from .models import Account, AccountKind, Transfer, TransferGroup


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


# --- Prepaid liability and breakage ------------------------------------------------------
#
# What the operator owes and what it has kept, month by month, from the
# transfers alone: subscriber balances (line wallets, deferred revenue until
# spent), balances forfeited when lines terminated (breakage), and the value
# of vouchers sold to distributors and not yet redeemed. Every figure is a
# sum of transfers touching accounts of one kind; the columns are transfer
# codes, so finance can find each figure's transfers in the ledger.


@dataclass(frozen=True)
class Movement:
    """A column of a section: the transfers whose code matches, in or out."""

    key: str
    label: Any
    # Transfer codes (exact) or prefixes ending in "*" or starting with "*".
    codes: tuple[str, ...]

    def matches(self, code: str) -> bool:
        for pattern in self.codes:
            if pattern.endswith("*") and code.startswith(pattern[:-1]):
                return True
            if pattern.startswith("*") and code.endswith(pattern[1:]):
                return True
            if code == pattern:
                return True
        return False


OTHER = "other"


@dataclass(frozen=True)
class Section:
    key: str
    title: Any
    kind: str
    # How the section's accounts are named in the ledger ({currency} filled in).
    account_codes: str
    movements: tuple[Movement, ...]
    help: Any = ""

    def column_of(self, code: str) -> str:
        for movement in self.movements:
            if movement.matches(code):
                return movement.key
        return OTHER


LIABILITY_SECTIONS: tuple[Section, ...] = (
    Section(
        key="balances",
        title=_("Subscriber balances (deferred revenue)"),
        kind=AccountKind.WALLET,
        account_codes="wallet:line:*",
        help=_("Credit on lines' wallets: owed to subscribers until spent or forfeited."),
        movements=(
            Movement("topups", _("Top-up credit"), ("topup.credit",)),
            Movement("bonus", _("Promotion bonus"), ("topup.bonus",)),
            # a partial refund takes its share of the credit back as refund.credit
            Movement("refunds", _("Refunds and reversals"), ("reversal:*", "refund.credit")),
            Movement("restore_fees", _("Restore fees"), ("restore_fee",)),
            Movement("spent", _("Plans paid from balance"), ("*.payment",)),
            Movement("forfeited", _("Forfeited at termination"), ("forfeit",)),
        ),
    ),
    Section(
        key="breakage",
        title=_("Forfeited balances (breakage)"),
        kind=AccountKind.FORFEITED,
        account_codes="forfeited:{currency}",
        help=_("Balances left on lines when they terminated, taken through the ledger."),
        movements=(Movement("forfeited", _("Forfeited at termination"), ("forfeit",)),),
    ),
    Section(
        key="vouchers",
        title=_("Voucher liability"),
        kind=AccountKind.VOUCHER_LIABILITY,
        account_codes="voucher_liability:{currency}",
        help=_("Value of vouchers sold to distributors and not yet redeemed, blocked or expired."),
        movements=(
            Movement("sold", _("Sold (activated)"), ("voucher.sale",)),
            Movement("redeemed", _("Redeemed"), ("voucher.redeem",)),
            Movement("blocked", _("Blocked"), ("voucher.block",)),
            Movement("expired", _("Expired (breakage)"), ("voucher.breakage",)),
        ),
    ),
)


@dataclass
class MonthFigures:
    month: date
    opening: int = 0
    # Movement key -> net amount (credits to the section's accounts minus debits).
    movements: dict[str, int] = field(default_factory=dict)

    @property
    def closing(self) -> int:
        return self.opening + sum(self.movements.values())

    def movement(self, key: str) -> int:
        return self.movements.get(key, 0)


@dataclass
class SectionReport:
    section: Section
    currency: str
    months: list[MonthFigures]
    # How many accounts of the kind exist in the currency.
    accounts: int = 0
    # Every transfer code seen in the range, with its column.
    codes: dict[str, str] = field(default_factory=dict)

    @property
    def account_codes(self) -> str:
        return self.section.account_codes.format(currency=self.currency)

    @property
    def columns(self) -> list[Movement]:
        columns = list(self.section.movements)
        if any(month.movement(OTHER) for month in self.months):
            columns.append(Movement(OTHER, _("Other movements"), ()))
        return columns

    @property
    def opening(self) -> int:
        return self.months[0].opening if self.months else 0

    @property
    def closing(self) -> int:
        return self.months[-1].closing if self.months else 0

    def total(self, key: str) -> int:
        return sum(month.movement(key) for month in self.months)


@dataclass
class LiabilityReport:
    first_month: date
    last_month: date
    # Currency -> its sections, in LIABILITY_SECTIONS order.
    currencies: dict[str, list[SectionReport]]
    queries: int = 0


MAX_REPORT_MONTHS = 36


class ReportRangeError(ValidationError):
    pass


def parse_month(text: str) -> date:
    """ "2026-07" as the first day of that month; ReportRangeError otherwise."""
    value = (text or "").strip()
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise ReportRangeError(
            _("Enter a month as YYYY-MM, e.g. 2026-07."), code="month_format"
        ) from None


def months_between(first: date, last: date) -> list[date]:
    months = []
    current = first.replace(day=1)
    while current <= last:
        months.append(current)
        current = _next_month(current)
    return months


def _next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def default_month_range(today: date | None = None, months: int = 6) -> tuple[date, date]:
    """The last `months` months, the current one (operator's time zone) included."""
    last = (today or timezone.localdate(clock.now())).replace(day=1)
    first = last
    for _n in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, last


def check_month_range(first: date, last: date) -> tuple[date, date]:
    first, last = first.replace(day=1), last.replace(day=1)
    if first > last:
        raise ReportRangeError(
            _("The first month must not come after the last one."), code="month_order"
        )
    if len(months_between(first, last)) > MAX_REPORT_MONTHS:
        raise ReportRangeError(
            _("Choose at most %(months)d months."),
            code="month_range",
            params={"months": MAX_REPORT_MONTHS},
        )
    return first, last


def liability_report(
    first_month: date, last_month: date, tz: tzinfo | None = None
) -> LiabilityReport:
    """Opening balance, movements by transfer code and closing balance of
    each section, per currency and month (months in `tz`, the operator's
    time zone by default). Five queries whatever the range and the size of
    the ledger: the accounts per kind, then credits and debits before the
    range (opening) and within it (grouped by month and code)."""
    first_month, last_month = check_month_range(first_month, last_month)
    zone = tz or timezone.get_current_timezone()
    start = datetime.combine(first_month, time.min, tzinfo=zone)
    end = datetime.combine(_next_month(last_month), time.min, tzinfo=zone)
    kinds = [section.kind for section in LIABILITY_SECTIONS]
    months = months_between(first_month, last_month)

    accounts = {
        (row["kind"], row["currency"]): row["n"]
        for row in Account.objects.filter(kind__in=kinds)
        .values("kind", "currency")
        .annotate(n=Count("pk"))
    }
    opening: dict[tuple[str, str], int] = defaultdict(int)
    # (kind, currency, month) -> transfer code -> net amount
    moved: dict[tuple[str, str, date], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    queries = 1
    for side, sign in (("credit_account", 1), ("debit_account", -1)):
        kind_field = f"{side}__kind"
        before = (
            Transfer.objects.filter(**{f"{kind_field}__in": kinds}, created_at__lt=start)
            .values("currency", kind_field)
            .annotate(total=Sum("amount"))
            .order_by()
        )
        for row in before:
            opening[(row[kind_field], row["currency"])] += sign * row["total"]
        within = (
            Transfer.objects.filter(
                **{f"{kind_field}__in": kinds}, created_at__gte=start, created_at__lt=end
            )
            .annotate(month=TruncMonth("created_at", tzinfo=zone))
            .values("currency", kind_field, "month", "code")
            .annotate(total=Sum("amount"))
            .order_by()
        )
        for row in within:
            month = row["month"]
            month_day = month.date() if isinstance(month, datetime) else month
            moved[(row[kind_field], row["currency"], month_day)][row["code"]] += sign * row["total"]
        queries += 2

    currencies = sorted(
        {currency for _kind, currency in accounts}
        | {currency for _kind, currency in opening}
        | {key[1] for key in moved}
    )
    report = LiabilityReport(first_month, last_month, {}, queries=queries)
    for currency in currencies:
        sections = []
        for section in LIABILITY_SECTIONS:
            balance = opening.get((section.kind, currency), 0)
            rows = []
            codes: dict[str, str] = {}
            for month in months:
                figures = MonthFigures(month=month, opening=balance)
                for code, amount in moved.get((section.kind, currency, month), {}).items():
                    if not amount:
                        continue
                    column = section.column_of(code)
                    codes[code] = column
                    figures.movements[column] = figures.movements.get(column, 0) + amount
                rows.append(figures)
                balance = figures.closing
            sections.append(
                SectionReport(
                    section=section,
                    currency=currency,
                    months=rows,
                    accounts=accounts.get((section.kind, currency), 0),
                    codes=dict(sorted(codes.items())),
                )
            )
        report.currencies[currency] = sections
    return report
