"""Payment attempts and the provider events that settle them.

An order may need several attempts (a declined card, then another). Card data
never reaches these tables: providers tokenise, the sandbox forgets."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AttemptStatus(models.TextChoices):
    CREATED = "created", _("Created")
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


OPEN_STATUSES = (AttemptStatus.CREATED, AttemptStatus.PENDING)
FINAL_STATUSES = (
    AttemptStatus.SUCCEEDED,
    AttemptStatus.FAILED,
    AttemptStatus.CANCELLED,
    AttemptStatus.REFUNDED,
)


class PaymentAttempt(models.Model):
    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(
        "topups.TopUpOrder",
        on_delete=models.PROTECT,
        related_name="payment_attempts",
        verbose_name=_("order"),
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_reference = models.CharField(_("provider reference"), max_length=255, blank=True)
    # Copied from the order when the attempt starts: what the provider was asked for.
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=10, choices=AttemptStatus.choices, default=AttemptStatus.CREATED
    )
    failure_code = models.CharField(_("failure code"), max_length=50, blank=True)
    failure_message = models.CharField(_("failure message"), max_length=255, blank=True)
    checkout_url = models.CharField(_("checkout URL"), max_length=2000, blank=True)
    # Provider-side facts needed later (return URLs, payment intent for refunds).
    provider_data = models.JSONField(_("provider data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~Q(provider_reference=""),
                name="payments_attempt_reference_uniq",
            )
        ]
        indexes = [
            models.Index(fields=["order", "-created_at"], name="payments_attempt_order_idx"),
            # The reconciliation job's scan: open attempts by age.
            models.Index(
                fields=["created_at"],
                name="payments_attempt_open_idx",
                condition=models.Q(status__in=["created", "pending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.public_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class ProviderEvent(models.Model):
    """One notification from a provider, stored once: a replay hits the unique
    constraint and changes nothing."""

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event id"), max_length=255)
    type = models.CharField(_("type"), max_length=100)
    attempt = models.ForeignKey(
        PaymentAttempt,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("payment attempt"),
    )
    received_at = models.DateTimeField(_("received"))
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=50, blank=True)
    # Proof of what was received without keeping the payload itself.
    payload_sha256 = models.CharField(_("payload SHA-256"), max_length=64)

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="payments_event_provider_id_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


class SandboxVaultedCard(models.Model):
    """The sandbox gateway's side of a saved card: one hosted "save a card"
    session and, once completed, the token it issued. Like a real gateway's
    vault it remembers how the test card behaves, never the card number."""

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    customer_reference = models.CharField(_("customer reference"), max_length=100)
    return_url = models.CharField(_("return URL"), max_length=2000, blank=True)
    cancel_url = models.CharField(_("cancel URL"), max_length=2000, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    # What the test card does when charged: "succeeded", "challenge" or a failure code.
    behaviour = models.CharField(_("test card behaviour"), max_length=30, blank=True)
    brand = models.CharField(_("brand"), max_length=30, blank=True)
    last4 = models.CharField(_("last four digits"), max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"), null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(_("expiry year"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("sandbox saved card")
        verbose_name_plural = _("sandbox saved cards")

    def __str__(self) -> str:
        return f"sbxpm_{self.public_id.hex}"

    @property
    def token(self) -> str:
        return f"sbxpm_{self.public_id.hex}"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    CONFIRMED = "confirmed", _("Confirmed")
    FAILED = "failed", _("Failed")


class Refund(models.Model):
    """Money given back on one payment, whole or in part. The books are
    reversed when it is requested; the provider confirms it (at once, or by
    webhook). A failed one is asked again under the same idempotency key, so
    the provider gives the money back at most once."""

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    attempt = models.ForeignKey(
        PaymentAttempt,
        on_delete=models.PROTECT,
        related_name="refunds",
        verbose_name=_("payment attempt"),
    )
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=10, choices=RefundStatus.choices, default=RefundStatus.REQUESTED
    )
    # Sent with every request for this refund, the first and each retry.
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, unique=True)
    provider_reference = models.CharField(_("provider reference"), max_length=255, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    actor = models.CharField(_("requested by"), max_length=100)
    failure_message = models.CharField(_("failure message"), max_length=255, blank=True)
    tries = models.PositiveSmallIntegerField(_("requests sent"), default=0)
    created_at = models.DateTimeField(_("requested"))
    updated_at = models.DateTimeField(_("updated"))
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payments_refund_amount_positive"
            )
        ]
        indexes = [
            models.Index(fields=["attempt", "created_at"], name="payments_refund_attempt_idx"),
            models.Index(
                fields=["provider_reference"],
                condition=~Q(provider_reference=""),
                name="payments_refund_reference_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"refund:{self.public_id}"

    @property
    def is_retryable(self) -> bool:
        return self.status == RefundStatus.FAILED
