"""Agent reads: float balance and the float statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, Sum
from django.utils import timezone

from leb.ledger.models import Account, Transfer

from .models import Agent


@dataclass(frozen=True)
class Balance:
    currency: str
    available: int
    reserved: int

    @property
    def total(self) -> int:
        return self.available + self.reserved


def _balance_of(code: str) -> int:
    return Account.objects.filter(code=code).values_list("balance", flat=True).first() or 0


def float_code(agent: Agent) -> str:
    return f"agent_float:{agent.code}:{agent.currency}"


def reservation_code(agent: Agent) -> str:
    return f"agent_reservation:{agent.code}:{agent.currency}"


def balance(agent: Agent) -> Balance:
    return Balance(
        currency=agent.currency,
        available=_balance_of(float_code(agent)),
        reserved=_balance_of(reservation_code(agent)),
    )


@dataclass(frozen=True)
class StatementRow:
    posted_at: datetime
    code: str
    reference: str
    description: str
    amount: int  # signed: + into the float, - out of it
    balance: int


@dataclass(frozen=True)
class Statement:
    currency: str
    date_from: date
    date_to: date
    opening: int
    closing: int
    rows: list[StatementRow]


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _net(account_id: int, query: Q) -> int:
    credits = Transfer.objects.filter(query, credit_account_id=account_id).aggregate(
        s=Sum("amount")
    )["s"]
    debits = Transfer.objects.filter(query, debit_account_id=account_id).aggregate(s=Sum("amount"))[
        "s"
    ]
    return (credits or 0) - (debits or 0)


def statement(agent: Agent, date_from: date, date_to: date) -> Statement:
    """Every movement of the float between two dates (operator's time zone,
    both included), with the running balance."""
    account = Account.objects.filter(code=float_code(agent)).first()
    if account is None:
        return Statement(agent.currency, date_from, date_to, 0, 0, [])
    start, end = _start_of(date_from), _start_of(date_to + timedelta(days=1))
    opening = _net(account.pk, Q(created_at__lt=start))
    transfers = (
        Transfer.objects.filter(
            Q(debit_account_id=account.pk) | Q(credit_account_id=account.pk),
            created_at__gte=start,
            created_at__lt=end,
        )
        .select_related("group")
        .order_by("created_at", "pk")
    )
    running = opening
    rows = []
    for transfer in transfers:
        amount = transfer.amount if transfer.credit_account_id == account.pk else -transfer.amount
        running += amount
        rows.append(
            StatementRow(
                posted_at=transfer.created_at,
                code=transfer.code,
                reference=transfer.group.idempotency_key,
                description=transfer.group.description,
                amount=amount,
                balance=running,
            )
        )
    return Statement(agent.currency, date_from, date_to, opening, running, rows)
