"""The daily settlement: what leb's ledger says a provider owes us for a day,
what the provider's own books say, and every payment where the two differ.

One run per day, provider and currency. Reconciling a day again replaces that
day's runs for the provider, so a run always shows the latest comparison."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SettlementRun(models.Model):
    date = models.DateField(_("day"))
    provider = models.CharField(_("provider"), max_length=20)
    # Blank for a day on which neither side booked anything.
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    # leb's side, from the ledger (the provider's clearing account).
    leb_captured = models.BigIntegerField(_("captured per leb"), default=0)
    leb_refunded = models.BigIntegerField(_("refunded per leb"), default=0)
    leb_pending = models.BigIntegerField(_("paid, awaiting fulfilment, per leb"), default=0)
    leb_captures = models.PositiveIntegerField(_("captures per leb"), default=0)
    leb_refunds = models.PositiveIntegerField(_("refunds per leb"), default=0)
    # The provider's side, from its transaction list.
    provider_captured = models.BigIntegerField(_("captured per provider"), default=0)
    provider_refunded = models.BigIntegerField(_("refunded per provider"), default=0)
    provider_pending = models.BigIntegerField(_("not yet available at the provider"), default=0)
    provider_fees = models.BigIntegerField(_("provider fees"), default=0)
    provider_captures = models.PositiveIntegerField(_("captures per provider"), default=0)
    provider_refunds = models.PositiveIntegerField(_("refunds per provider"), default=0)
    mismatch_count = models.PositiveIntegerField(_("mismatches"), default=0)
    created_at = models.DateTimeField(_("reconciled"))
    actor = models.CharField(_("reconciled by"), max_length=100)

    class Meta:
        verbose_name = _("settlement run")
        verbose_name_plural = _("settlement runs")
        ordering = ["-date", "provider", "currency"]
        permissions = [("reconcile_settlement", _("Can reconcile a day's settlement"))]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "provider", "currency"], name="finance_run_day_uniq"
            )
        ]
        indexes = [models.Index(fields=["-created_at"], name="finance_run_created_idx")]

    def __str__(self) -> str:
        return f"{self.date} {self.provider} {self.currency or '-'}"


class MismatchKind(models.TextChoices):
    PAID_NOT_FULFILLED = "paid_not_fulfilled", _("Paid, not fulfilled")
    FULFILLED_WITHOUT_CAPTURE = "fulfilled_without_capture", _("Fulfilled without a capture")
    AMOUNT_DIFFERS = "amount_differs", _("Amount differs")
    REFUND_DIFFERS = "refund_differs", _("Refund differs")


class Mismatch(models.Model):
    run = models.ForeignKey(
        SettlementRun,
        on_delete=models.CASCADE,
        related_name="mismatches",
        verbose_name=_("settlement run"),
    )
    kind = models.CharField(_("kind"), max_length=30, choices=MismatchKind.choices)
    order = models.ForeignKey(
        "topups.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("order"),
    )
    attempt = models.ForeignKey(
        "payments.PaymentAttempt",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("payment attempt"),
    )
    reference = models.CharField(_("provider reference"), max_length=255, blank=True)
    provider_transaction = models.CharField(_("provider transaction"), max_length=255, blank=True)
    leb_amount = models.BigIntegerField(_("amount per leb"), null=True, blank=True)
    provider_amount = models.BigIntegerField(_("amount per provider"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("settlement mismatch")
        verbose_name_plural = _("settlement mismatches")
        ordering = ["run", "kind", "pk"]

    def __str__(self) -> str:
        return f"{self.run}: {self.kind} {self.reference}"
