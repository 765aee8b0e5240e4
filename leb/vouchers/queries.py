"""Reads of the vouchers app: a distributor's statement from the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from leb.ledger.models import Account, Transfer

from .models import Distributor, VoucherBatch

INVOICED = "invoiced"
BLOCKED = "blocked"
PAID = "paid"


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    kind: str  # INVOICED, BLOCKED or PAID
    description: str
    charged: int  # what the distributor owes more
    credited: int  # what it owes less
    owed_after: int


@dataclass
class Statement:
    distributor: Distributor
    currency: str
    lines: list[StatementLine] = field(default_factory=list)
    invoiced: int = 0
    blocked: int = 0
    paid: int = 0

    @property
    def owed(self) -> int:
        return self.invoiced - self.blocked - self.paid


def distributor_currencies(distributor: Distributor) -> list[str]:
    prefix = f"clearing:voucher-sales:{distributor.code}:"
    return sorted(
        Account.objects.filter(code__startswith=prefix).values_list("currency", flat=True)
    )


def _batch_id(group_key: str) -> int | None:
    # Activations and blocks are keyed "voucher-batch:<pk>:activate:..." / ":block:...".
    parts = group_key.split(":")
    if len(parts) >= 2 and parts[0] == "voucher-batch" and parts[1].isdigit():
        return int(parts[1])
    return None


def distributor_statement(distributor: Distributor, currency: str) -> Statement:
    """Every movement of the distributor's receivable in one currency, oldest
    first: activated batches charged, blocked vouchers and payments credited."""
    statement = Statement(distributor=distributor, currency=currency)
    code = f"clearing:voucher-sales:{distributor.code}:{currency}"
    account = Account.objects.filter(code=code).first()
    if account is None:
        return statement
    transfers = list(
        Transfer.objects.filter(Q(debit_account=account) | Q(credit_account=account))
        .values_list(
            "created_at",
            "debit_account_id",
            "amount",
            "code",
            "group__idempotency_key",
            "group__description",
        )
        .order_by("created_at", "pk")
    )
    batches = VoucherBatch.objects.in_bulk(
        {_batch_id(key) for *_rest, key, _d in transfers} - {None}
    )
    owed = 0
    for at, debit_id, amount, kind_code, key, description in transfers:
        charged = amount if debit_id == account.pk else 0
        credited = 0 if charged else amount
        owed += charged - credited
        batch = batches.get(_batch_id(key) or 0)
        if kind_code == "voucher.payment":
            kind = PAID
            statement.paid += credited - charged
        elif charged:
            kind = INVOICED
            statement.invoiced += charged
        else:
            kind = BLOCKED
            statement.blocked += credited
        text = batch.code if batch is not None else description
        statement.lines.append(StatementLine(at, kind, text, charged, credited, owed))
    return statement
