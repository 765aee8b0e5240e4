"""Double-entry ledger: accounts and append-only one-debit-one-credit transfers.

Balance convention: an account's balance is credits minus debits. Liability
accounts (a line's wallet, an agent's float, voucher liability) therefore
carry positive balances; clearing accounts, which hold money we received,
carry negative ones. The balances of all accounts of one currency sum to zero.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    WALLET = "wallet", _("Line wallet")
    CLEARING = "clearing", _("Payment clearing")
    SUSPENSE = "suspense", _("Paid orders awaiting fulfilment")
    REVENUE = "revenue", _("Top-up revenue")
    PROMOTION_EXPENSE = "promotion_expense", _("Promotion expense")
    AGENT_FLOAT = "agent_float", _("Agent float")
    AGENT_COMMISSION = "agent_commission", _("Agent commission")
    AGENT_RESERVATION = "agent_reservation", _("Agent float reserved for pending top-ups")
    VOUCHER_LIABILITY = "voucher_liability", _("Voucher liability")
    FORFEITED = "forfeited", _("Forfeited balances")


class Account(models.Model):
    code = models.CharField(_("code"), max_length=120, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=AccountKind.choices)
    currency = models.CharField(_("currency"), max_length=3)
    no_negative = models.BooleanField(_("may not go below zero"), default=False)
    # Running balances are kept only for per-subscriber accounts (wallets,
    # floats). System accounts (revenue, clearing) would otherwise be one hot
    # row every top-up waits on; their balance is derived from transfers.
    tracks_balance = models.BooleanField(_("keeps a running balance"), default=False)
    balance = models.BigIntegerField(_("balance (minor units)"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        permissions = [("view_liability_report", _("Can view the prepaid liability report"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(no_negative=False) | Q(balance__gte=0),
                name="ledger_account_no_negative",
            ),
            models.CheckConstraint(
                condition=Q(tracks_balance=True) | Q(balance=0),
                name="ledger_account_untracked_balance_zero",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class TransferGroup(models.Model):
    """One business event's postings, written in one transaction."""

    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    content_hash = models.CharField(_("content hash"), max_length=64)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("posted"), db_index=True)

    class Meta:
        verbose_name = _("transfer group")
        verbose_name_plural = _("transfer groups")

    def __str__(self) -> str:
        return self.idempotency_key


class Transfer(models.Model):
    group = models.ForeignKey(
        TransferGroup, on_delete=models.PROTECT, related_name="transfers", verbose_name=_("group")
    )
    debit_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="debits", verbose_name=_("debit account")
    )
    credit_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="credits", verbose_name=_("credit account")
    )
    amount = models.BigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    code = models.CharField(_("code"), max_length=40, help_text=_("what kind of movement"))
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
        verbose_name=_("reverses"),
    )
    created_at = models.DateTimeField(_("posted"))

    class Meta:
        verbose_name = _("transfer")
        verbose_name_plural = _("transfers")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="ledger_transfer_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(debit_account=F("credit_account")),
                name="ledger_transfer_distinct_accounts",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.debit_account_id}->{self.credit_account_id} {self.amount} {self.currency}"
