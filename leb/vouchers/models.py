"""Prepaid vouchers (充值卡 / 增值卡): printed serial + secret PIN, sold in batches.

A PIN is kept only as HMAC-SHA256(pepper, PIN) (see `pins`); the clear PIN
exists once, in the export file written for the printer when the batch is
generated.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Distributor(models.Model):
    """Who sells a batch: a shop chain, an agent, a kiosk operator."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=200)
    contact = models.CharField(_("contact"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("voucher distributor")
        verbose_name_plural = _("voucher distributors")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class VoucherState(models.TextChoices):
    GENERATED = "generated", _("Generated")
    DISTRIBUTED = "distributed", _("Distributed")
    ACTIVE = "active", _("Active")
    REDEEMED = "redeemed", _("Redeemed")
    EXPIRED = "expired", _("Expired")
    BLOCKED = "blocked", _("Blocked")


class BatchState(models.TextChoices):
    GENERATED = "generated", _("Generated")
    DISTRIBUTED = "distributed", _("Distributed")
    ACTIVE = "active", _("Active")


class VoucherBatch(models.Model):
    code = models.CharField(
        _("batch code"),
        max_length=12,
        unique=True,
        help_text=_("Upper-case letters and digits; printed at the start of every serial."),
    )
    distributor = models.ForeignKey(
        Distributor,
        on_delete=models.PROTECT,
        related_name="batches",
        verbose_name=_("distributor"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    value = models.PositiveBigIntegerField(
        _("value (minor units)"),
        help_text=_("Face value; for a plan voucher, the plan's price when the batch was made."),
    )
    plan = models.ForeignKey(
        "catalog.Plan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="voucher_batches",
        verbose_name=_("plan"),
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    luhn = models.BooleanField(_("PIN check digit"), default=False)
    expires_at = models.DateTimeField(_("expires"))
    state = models.CharField(
        _("state"), max_length=12, choices=BatchState.choices, default=BatchState.GENERATED
    )
    created_at = models.DateTimeField(_("created"))
    created_by = models.CharField(_("created by"), max_length=100, blank=True)
    exported_at = models.DateTimeField(_("PINs exported"), null=True, blank=True)
    export_name = models.CharField(_("export file"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("voucher batch")
        verbose_name_plural = _("voucher batches")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="vouchers_batch_value_positive"),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="vouchers_batch_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Voucher(models.Model):
    batch = models.ForeignKey(
        VoucherBatch, on_delete=models.PROTECT, related_name="vouchers", verbose_name=_("batch")
    )
    number = models.PositiveIntegerField(_("number in batch"))
    serial = models.CharField(_("serial"), max_length=24, unique=True)
    pin_hash = models.CharField(_("PIN hash"), max_length=64, unique=True, editable=False)
    state = models.CharField(
        _("state"), max_length=12, choices=VoucherState.choices, default=VoucherState.GENERATED
    )
    # Copied from the batch, so redemption is one conditional UPDATE on this row.
    expires_at = models.DateTimeField(_("expires"))
    state_changed_at = models.DateTimeField(_("state changed"))
    redeemed_at = models.DateTimeField(_("redeemed"), null=True, blank=True)
    redeemed_channel = models.CharField(_("entered on"), max_length=10, blank=True)
    line = models.ForeignKey(
        "lines.Line",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="vouchers",
        verbose_name=_("line"),
    )
    order = models.OneToOneField(
        "topups.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="voucher",
        verbose_name=_("top-up order"),
    )

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["batch", "number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "number"], name="vouchers_batch_number"),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(state__in=["generated", "distributed", "active"]),
                name="vouchers_live_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.serial


class DistributorPayment(models.Model):
    """Money a distributor paid us against what its activated vouchers cost
    (its receivable). Written only by do_record_distributor_payment."""

    distributor = models.ForeignKey(
        Distributor,
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("distributor"),
    )
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    reference = models.CharField(
        _("payment reference"), max_length=100, help_text=_("The bank's or cashier's reference.")
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    recorded_by = models.CharField(_("recorded by"), max_length=100)
    created_at = models.DateTimeField(_("recorded"))

    class Meta:
        verbose_name = _("distributor payment")
        verbose_name_plural = _("distributor payments")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["distributor", "reference"], name="vouchers_distributor_payment_ref_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.distributor.code} {self.reference}"
