from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from leb.catalog.models import Channel


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Awaiting payment")
    PAID = "paid", _("Paid")
    FULFILLED = "fulfilled", _("Completed")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


class TopUpOrder(models.Model):
    # Not stored: True on the instance do_create_order returns when that very
    # call created the order, False when it returned an earlier one (a replay
    # of the same key, possibly racing with this one).
    created_now: bool = False

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    line = models.ForeignKey(
        "lines.Line", on_delete=models.PROTECT, related_name="orders", verbose_name=_("line")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    plan = models.ForeignKey(
        "catalog.Plan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("plan"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    price = models.PositiveBigIntegerField(_("price (minor units)"))
    quote = models.JSONField(_("frozen quote"))
    status = models.CharField(
        _("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    request_hash = models.CharField(_("request hash"), max_length=64)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="topup_orders",
        verbose_name=_("customer"),
    )
    actor = models.CharField(_("created by"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("payment due by"))
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    paid_amount = models.PositiveBigIntegerField(_("paid amount"), null=True, blank=True)
    payment_provider = models.CharField(_("payment provider"), max_length=20, blank=True)
    payment_reference = models.CharField(_("payment reference"), max_length=200, blank=True)
    fulfilled_at = models.DateTimeField(_("completed"), null=True, blank=True)
    valid_until_after = models.DateTimeField(_("valid until after top-up"), null=True, blank=True)
    # What the top-up really added, which the cap or the reset rule can make
    # fewer than the plan's days: what the receipt states.
    days_added = models.PositiveIntegerField(_("days added"), null=True, blank=True)
    receipt_number = models.CharField(
        _("receipt number"), max_length=20, null=True, blank=True, unique=True
    )
    finished_at = models.DateTimeField(_("failed/expired/cancelled"), null=True, blank=True)
    failure_reason = models.CharField(_("reason"), max_length=200, blank=True)
    refunded_at = models.DateTimeField(_("refunded"), null=True, blank=True)
    # Paid money that leb could not turn into a top-up: the provider must give it back.
    refund_due = models.BooleanField(_("refund due at the provider"), default=False)

    class Meta:
        verbose_name = _("top-up order")
        verbose_name_plural = _("top-up orders")
        permissions = [
            ("refund_topuporder", _("Can refund top-ups up to the support limit")),
            ("refund_any_topuporder", _("Can refund top-ups of any amount")),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"],
                condition=Q(status="pending_payment"),
                name="topups_pending_idx",
            ),
            models.Index(fields=["paid_at"], condition=Q(status="paid"), name="topups_paid_idx"),
            models.Index(fields=["line", "-created_at"], name="topups_line_idx"),
            # The dashboard's top-ups by day and channel: an index-only scan of
            # the period on PostgreSQL instead of reading every order.
            models.Index(
                fields=["fulfilled_at"],
                include=["currency", "channel", "price"],
                condition=Q(status="fulfilled"),
                name="topups_fulfilled_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.receipt_number or str(self.public_id)

    @property
    def order_ref(self) -> str:
        return f"order:{self.pk}"


class ReceiptCounter(models.Model):
    """Gap-free receipt numbers per year: taken inside the fulfilment
    transaction, so a rolled-back fulfilment gives its number back."""

    year = models.PositiveIntegerField(_("year"), primary_key=True)
    last = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("receipt counter")
        verbose_name_plural = _("receipt counters")

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"
