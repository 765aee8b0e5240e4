"""Agent sales and commission, read from the ledger.

A sale posts one group under `agent:<code>:<external_id>` (see
leb.agents.actions): `agent.sale` debits the agent's float
`agent_float:<code>:<cur>` the wholesale price, and `agent.commission`
debits `agent_commission:<code>:<cur>` the discount (retail less
wholesale); both credit `clearing:agent:<cur>`. A staff reversal posts
`reversal:agent.sale` and `reversal:agent.commission`, crediting the same
two accounts. So these figures are sums of transfers on accounts that
`leb ledger verify` checks, not a second set of books:

- top-ups: `agent.sale` transfers; wholesale: their amounts;
- commission: `agent.commission` amounts; retail: wholesale + commission;
- reversals: the same for the reversal codes, counted on the day they were
  posted (a sale reversed later stays in the period it was sold in);
- net: sold less reversed.

Two-step holds (`agent.reserve` and their release) move float to the
reservation account and back without selling anything: they are left out.
Days are the operator's calendar days (TIME_ZONE).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leb.ledger.models import Account, AccountKind, Transfer

from .models import Agent, AgentTopUp

SALE = "agent.sale"
COMMISSION = "agent.commission"
REVERSED_SALE = f"reversal:{SALE}"
REVERSED_COMMISSION = f"reversal:{COMMISSION}"
CODES = (SALE, COMMISSION, REVERSED_SALE, REVERSED_COMMISSION)
MAX_DAYS = 366


@dataclass(frozen=True)
class Figures:
    """Minor units of one currency."""

    topups: int = 0
    wholesale: int = 0
    commission: int = 0
    reversals: int = 0
    reversed_wholesale: int = 0
    reversed_commission: int = 0

    @property
    def retail(self) -> int:
        return self.wholesale + self.commission

    @property
    def reversed_retail(self) -> int:
        return self.reversed_wholesale + self.reversed_commission

    @property
    def net_topups(self) -> int:
        return self.topups - self.reversals

    @property
    def net_retail(self) -> int:
        return self.retail - self.reversed_retail

    @property
    def net_wholesale(self) -> int:
        return self.wholesale - self.reversed_wholesale

    @property
    def net_commission(self) -> int:
        return self.commission - self.reversed_commission

    def __add__(self, other: Figures) -> Figures:
        return Figures(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))

    def add(self, code: str, count: int, amount: int) -> Figures:
        if code == SALE:
            return replace(self, topups=self.topups + count, wholesale=self.wholesale + amount)
        if code == COMMISSION:
            return replace(self, commission=self.commission + amount)
        if code == REVERSED_SALE:
            return replace(
                self,
                reversals=self.reversals + count,
                reversed_wholesale=self.reversed_wholesale + amount,
            )
        return replace(self, reversed_commission=self.reversed_commission + amount)


@dataclass(frozen=True)
class Period:
    date_from: date
    date_to: date
    currency: str

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.date_from, time.min))

    @property
    def end(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.date_to + timedelta(days=1), time.min))


def check_period(date_from: date, date_to: date, currency: str) -> Period:
    """ValidationError (translated) for a range the report does not answer."""
    if date_to < date_from:
        raise ValidationError(_("The end date is before the start date."), code="range_reversed")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ValidationError(
            _("Choose at most %(days)d days."), code="range_too_long", params={"days": MAX_DAYS}
        )
    return Period(date_from, date_to, (currency or "").upper())


@dataclass(frozen=True)
class AgentSales:
    agent: Agent
    figures: Figures


@dataclass(frozen=True)
class SalesReport:
    period: Period
    rows: list[AgentSales]
    totals: Figures
    # The ledger accounts the figures are sums of, for the page to name.
    sources: list[str] = field(default_factory=list)


def float_code(agent: Agent) -> str:
    return f"agent_float:{agent.code}:{agent.currency}"


def commission_code(agent: Agent) -> str:
    return f"{AccountKind.AGENT_COMMISSION}:{agent.code}:{agent.currency}"


def sources(currency: str) -> list[str]:
    return [
        f"agent_float:<code>:{currency}",
        f"{AccountKind.AGENT_COMMISSION}:<code>:{currency}",
        f"{AccountKind.CLEARING}:agent:{currency}",
    ]


def _agent_accounts(agents: list[Agent]) -> dict[int, Agent]:
    """Account id -> agent, for the float and commission accounts of `agents`."""
    by_code = {}
    for agent in agents:
        by_code[float_code(agent)] = agent
        by_code[commission_code(agent)] = agent
    return {
        pk: by_code[code]
        for pk, code in Account.objects.filter(code__in=by_code).values_list("pk", "code")
    }


def _transfers(period: Period, account_ids: list[int]) -> Any:
    """The sale, commission and reversal legs on these accounts in the period:
    a sale leg debits the agent's account, a reversal leg credits it."""
    return Transfer.objects.filter(
        Q(code__in=(SALE, COMMISSION), debit_account_id__in=account_ids)
        | Q(code__in=(REVERSED_SALE, REVERSED_COMMISSION), credit_account_id__in=account_ids),
        currency=period.currency,
        created_at__gte=period.start,
        created_at__lt=period.end,
    )


def _agent_of(row: dict[str, Any], accounts: dict[int, Agent]) -> Agent:
    account = (
        row["debit_account_id"] if row["code"] in (SALE, COMMISSION) else row["credit_account_id"]
    )
    return accounts[account]


def sales_report(period: Period) -> SalesReport:
    """Per agent of the currency with sales or reversals in the period, and totals."""
    agents = list(Agent.objects.filter(currency=period.currency).order_by("code"))
    accounts = _agent_accounts(agents)
    rows = (
        _transfers(period, list(accounts))
        .values("code", "debit_account_id", "credit_account_id")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by()
    )
    per_agent: dict[int, Figures] = defaultdict(Figures)
    for row in rows:
        agent = _agent_of(row, accounts)
        per_agent[agent.pk] = per_agent[agent.pk].add(row["code"], row["n"], row["amount"] or 0)
    listed = [AgentSales(agent, per_agent[agent.pk]) for agent in agents if agent.pk in per_agent]
    totals = sum((row.figures for row in listed), Figures())
    return SalesReport(period, listed, totals, sources(period.currency))


@dataclass(frozen=True)
class DaySales:
    day: date
    figures: Figures


@dataclass(frozen=True)
class Sale:
    """One sale or reversal posting of the agent, with the top-up it belongs to."""

    posted_at: datetime
    reference: str  # the ledger group's idempotency key
    kind: str  # SALE or REVERSED_SALE
    figures: Figures
    topup: AgentTopUp | None


@dataclass(frozen=True)
class AgentReport:
    agent: Agent
    period: Period
    days: list[DaySales]
    totals: Figures
    day: date | None = None
    sales: list[Sale] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


def agent_report(agent: Agent, period: Period, day: date | None = None) -> AgentReport:
    """One agent's sales by day in the period; with `day`, that day's postings."""
    accounts = _agent_accounts([agent])
    transfers = _transfers(period, list(accounts))
    rows = (
        transfers.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "code")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by()
    )
    per_day: dict[date, Figures] = defaultdict(Figures)
    for row in rows:
        per_day[row["day"]] = per_day[row["day"]].add(row["code"], row["n"], row["amount"] or 0)
    days = [DaySales(d, per_day[d]) for d in sorted(per_day)]
    totals = sum((d.figures for d in days), Figures())
    sales: list[Sale] = []
    if day is not None:
        sales = _postings(agent, transfers, Period(day, day, period.currency))
    return AgentReport(
        agent,
        period,
        days,
        totals,
        day,
        sales,
        [
            float_code(agent),
            commission_code(agent),
            f"{AccountKind.CLEARING}:agent:{agent.currency}",
        ],
    )


def _postings(agent: Agent, transfers: Any, day: Period) -> list[Sale]:
    legs = (
        transfers.filter(created_at__gte=day.start, created_at__lt=day.end)
        .select_related("group")
        .order_by("created_at", "group_id", "pk")
    )
    groups: dict[int, Sale] = {}
    for leg in legs:
        sale = groups.get(leg.group_id)
        if sale is None:
            kind = REVERSED_SALE if leg.code.startswith("reversal:") else SALE
            sale = Sale(leg.created_at, leg.group.idempotency_key, kind, Figures(), None)
        groups[leg.group_id] = replace(sale, figures=sale.figures.add(leg.code, 1, leg.amount))
    prefix = f"agent:{agent.code}:"

    def external_id(sale: Sale) -> str:
        key = sale.reference.removeprefix(prefix)
        return key.removesuffix(":reversal") if sale.kind == REVERSED_SALE else key

    wanted = {external_id(sale) for sale in groups.values()}
    topups = {
        t.external_id: t for t in AgentTopUp.objects.filter(agent=agent, external_id__in=wanted)
    }
    return [replace(sale, topup=topups.get(external_id(sale))) for sale in groups.values()]


def currencies() -> list[str]:
    """The agents' float currencies, for the report's choice."""
    return list(Agent.objects.order_by("currency").values_list("currency", flat=True).distinct())


# --- Monthly commission statement ------------------------------------------------

DEPOSIT = "agent.deposit"
MAX_MONTHS = 24


@dataclass(frozen=True)
class MonthStatement:
    """One agent's calendar month (operator's time zone): what it sold, at
    what wholesale price, the commission it earned, the deposits it made, and
    its float at the start and end of the month. Minor units of the agent's
    currency."""

    month: date  # the first day
    figures: Figures
    deposits: int
    deposit_count: int
    opening_float: int
    closing_float: int


def parse_month(value: str) -> date:
    """ "2026-05" -> 1 May 2026; ValidationError (translated) otherwise."""
    try:
        year, month = (int(part) for part in (value or "").strip().split("-"))
        return date(year, month, 1)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            _("Enter a month as YYYY-MM, e.g. 2026-05."), code="month_invalid"
        ) from exc


def _next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_range(first: date, last: date) -> list[date]:
    if last < first:
        raise ValidationError(_("The end date is before the start date."), code="range_reversed")
    months = [first]
    while months[-1] < last:
        months.append(_next_month(months[-1]))
        if len(months) > MAX_MONTHS:
            raise ValidationError(
                _("Choose at most %(months)d months."),
                code="range_too_long",
                params={"months": MAX_MONTHS},
            )
    return months


def monthly_statements(agent: Agent, first: date, last: date) -> list[MonthStatement]:
    """One statement per month from `first` to `last` (first days of months),
    from the agent's float and commission accounts: a handful of grouped
    queries whatever the number of months or sales."""
    from django.db.models.functions import TruncMonth

    months = month_range(first, last)
    period = Period(months[0], _next_month(months[-1]) - timedelta(days=1), agent.currency)
    zone = timezone.get_current_timezone()
    accounts = _agent_accounts([agent])
    sold: dict[date, Figures] = defaultdict(Figures)
    rows = (
        _transfers(period, list(accounts))
        .annotate(month=TruncMonth("created_at", tzinfo=zone))
        .values("month", "code")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by()
    )
    for row in rows:
        month = _as_date(row["month"])
        sold[month] = sold[month].add(row["code"], row["n"], row["amount"] or 0)
    float_account = Account.objects.filter(code=float_code(agent)).first()
    deposits: dict[date, tuple[int, int]] = {}
    net: dict[date, int] = defaultdict(int)
    opening = 0
    if float_account is not None:
        window = Q(created_at__gte=period.start, created_at__lt=period.end)
        for row in (
            Transfer.objects.filter(window, code=DEPOSIT, credit_account=float_account)
            .annotate(month=TruncMonth("created_at", tzinfo=zone))
            .values("month")
            .annotate(n=Count("pk"), amount=Sum("amount"))
            .order_by()
        ):
            deposits[_as_date(row["month"])] = (row["n"], row["amount"] or 0)
        for side, sign in (("credit_account", 1), ("debit_account", -1)):
            for row in (
                Transfer.objects.filter(window, **{side: float_account})
                .annotate(month=TruncMonth("created_at", tzinfo=zone))
                .values("month")
                .annotate(amount=Sum("amount"))
                .order_by()
            ):
                net[_as_date(row["month"])] += sign * (row["amount"] or 0)
        before = Transfer.objects.filter(created_at__lt=period.start)
        credits = before.filter(credit_account=float_account).aggregate(s=Sum("amount"))["s"]
        debits = before.filter(debit_account=float_account).aggregate(s=Sum("amount"))["s"]
        opening = (credits or 0) - (debits or 0)
    statements = []
    for month in months:
        count, amount = deposits.get(month, (0, 0))
        closing = opening + net.get(month, 0)
        statements.append(MonthStatement(month, sold[month], amount, count, opening, closing))
        opening = closing
    return statements


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


MONTHLY_CSV_HEADER = [
    "month",
    "currency",
    "topups",
    "retail",
    "wholesale",
    "commission",
    "reversals",
    "net_retail",
    "net_wholesale",
    "net_commission",
    "deposits",
    "deposit_count",
    "opening_float",
    "closing_float",
]


def monthly_csv_rows(agent: Agent, statements: list[MonthStatement]) -> list[list[Any]]:
    """Raw minor units, one row per month, for a spreadsheet."""
    return [
        [
            s.month.strftime("%Y-%m"),
            agent.currency,
            s.figures.topups,
            s.figures.retail,
            s.figures.wholesale,
            s.figures.commission,
            s.figures.reversals,
            s.figures.net_retail,
            s.figures.net_wholesale,
            s.figures.net_commission,
            s.deposits,
            s.deposit_count,
            s.opening_float,
            s.closing_float,
        ]
        for s in statements
    ]
