"""The ledger as an export (leb.exports): one row per leg (Transfer) with the
transfer group (business event) it belongs to. See docs/exports.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from leb.common.exporting import (
    Column,
    Dataset,
    Kind,
    Money,
    Registry,
    date_filters,
    text_filter,
)

from .models import Transfer


class LedgerDataset(Dataset):
    name = "ledger"
    label = _("Ledger transfers")
    permission = "exports.export_ledger"
    changelist = "ledger.transfer"
    # The transfer list's filters and search (leb.ledger.admin.TransferAdmin).
    filters = (
        text_filter("currency__exact", label=_("currency"), max_length=3),
        text_filter("code__exact", label=_("code"), max_length=40),
        *date_filters("created_at", label=_("posted")),
    )
    search_fields = ("group__idempotency_key", "debit_account__code", "credit_account__code")
    columns = (
        Column("group", _("Transfer group"), Kind.INTEGER),
        Column("idempotency_key", _("Idempotency key")),
        Column("description", _("Description")),
        Column("posted_at", _("Posted"), Kind.DATETIME),
        Column("leg", _("Leg"), Kind.INTEGER),
        Column("code", _("Code")),
        Column("debit_account", _("Debit account")),
        Column("credit_account", _("Credit account")),
        Column("amount", _("Amount"), Kind.MONEY),
        Column("currency", _("Currency")),
        Column("reverses", _("Reverses leg"), Kind.INTEGER),
    )

    def queryset(self, cleaned: dict[str, Any]) -> QuerySet[Transfer]:
        return Transfer.objects.select_related("group", "debit_account", "credit_account")

    def row(self, transfer: Transfer) -> Sequence[Any]:
        return (
            transfer.group_id,
            transfer.group.idempotency_key,
            transfer.group.description,
            transfer.created_at,
            transfer.pk,
            transfer.code,
            transfer.debit_account.code,
            transfer.credit_account.code,
            Money(transfer.amount, transfer.currency),
            transfer.currency,
            transfer.reverses_id,
        )


def register(registry: Registry) -> None:
    registry.add(LedgerDataset())
