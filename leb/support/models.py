"""Support tickets: a conversation between a subscriber (signed in or not)
and staff, optionally about one line or one top-up order."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class TicketCategory(models.TextChoices):
    TOPUP = "topup", _("Top-up problem")
    VALIDITY = "validity", _("Validity or number")
    PAYMENT = "payment", _("Payment")
    ACCOUNT = "account", _("Account")
    FRAUD = "fraud", _("Suspected fake agent")
    OTHER = "other", _("Other")


class TicketStatus(models.TextChoices):
    OPEN = "open", _("Waiting for support")
    ANSWERED = "answered", _("Answered")
    CLOSED = "closed", _("Closed")


class Ticket(models.Model):
    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_tickets",
        verbose_name=_("user"),
    )
    # Guests have no account: the answer goes to one of these.
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone (E.164)"), max_length=16, blank=True)
    # The language the ticket was written in, so replies are emailed in it.
    language = models.CharField(_("language"), max_length=10, blank=True)
    subject = models.CharField(_("subject"), max_length=200)
    category = models.CharField(
        _("category"), max_length=12, choices=TicketCategory.choices, default=TicketCategory.OTHER
    )
    line = models.ForeignKey(
        "lines.Line",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_tickets",
        verbose_name=_("line"),
    )
    order = models.ForeignKey(
        "topups.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="support_tickets",
        verbose_name=_("top-up order"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("support ticket")
        verbose_name_plural = _("support tickets")
        constraints = [
            # A ticket nobody can be answered on is useless: account or contact.
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(contact_email="") | ~Q(contact_phone=""),
                name="support_ticket_reachable",
            )
        ]
        indexes = [
            models.Index(fields=["user", "-updated_at"], name="support_ticket_user_idx"),
            models.Index(fields=["status", "-updated_at"], name="support_ticket_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} ({str(self.public_id)[:8]})"

    @property
    def reference(self) -> str:
        """The short form shown to people and in email subjects."""
        return str(self.public_id)[:8].upper()

    @property
    def reply_email(self) -> str:
        """Where an answer is emailed: an account's address only once it is
        proven (an unproven one may be someone else's), else the guest's."""
        from leb.accounts.queries import verified_email

        if self.user is not None:
            return verified_email(self.user)
        return self.contact_email

    @property
    def reply_phone(self) -> str:
        """Where an answer is texted when there is no address to email."""
        from leb.accounts.queries import verified_phone

        if self.user is not None:
            return verified_phone(self.user)
        return self.contact_phone


class TicketMessage(models.Model):
    # Indexed by support_message_ticket_idx, which also serves the FK.
    ticket = models.ForeignKey(
        Ticket,
        on_delete=models.CASCADE,
        related_name="messages",
        db_index=False,
        verbose_name=_("ticket"),
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("author"),
    )
    from_staff = models.BooleanField(_("from staff"), default=False)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(_("sent"))

    class Meta:
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="support_message_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.created_at:%Y-%m-%d %H:%M}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUNDED = "refunded", _("Refunded")
    REJECTED = "rejected", _("Rejected")
    CLOSED = "closed", _("Closed")


# A dispute still being decided: at most one per order.
LIVE_DISPUTE = (DisputeStatus.OPEN, DisputeStatus.REFUND_REQUESTED)


class Dispute(models.Model):
    """A ticket escalated to a claim about one of the subscriber's top-ups:
    what they ask back and why, and what staff decided."""

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    ticket = models.OneToOneField(
        Ticket, on_delete=models.PROTECT, related_name="dispute", verbose_name=_("ticket")
    )
    order = models.ForeignKey(
        "topups.TopUpOrder",
        on_delete=models.PROTECT,
        related_name="disputes",
        verbose_name=_("top-up order"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    amount_requested = models.PositiveBigIntegerField(_("amount asked back (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.TextField(_("reason"))
    opened_by = models.CharField(_("opened by"), max_length=100)
    decision_note = models.CharField(_("decision"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("opened"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("dispute")
        verbose_name_plural = _("disputes")
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(status__in=["open", "refund_requested"]),
                name="support_dispute_one_live_per_order",
            ),
            models.CheckConstraint(
                condition=Q(amount_requested__gt=0), name="support_dispute_amount_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="support_dispute_status_idx")
        ]

    def __str__(self) -> str:
        return f"{str(self.public_id)[:8].upper()} ({self.get_status_display()})"

    @property
    def reference(self) -> str:
        return str(self.public_id)[:8].upper()

    @property
    def order_label(self) -> str:
        """The disputed top-up as the subscriber knows it: its receipt number."""
        return self.order.receipt_number or str(self.order.public_id)[:8].upper()


class DisputeEventKind(models.TextChoices):
    ESCALATED = "escalated", _("Escalated to a dispute")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUND_CONFIRMED = "refund_confirmed", _("Refund confirmed")
    REFUND_FAILED = "refund_failed", _("Refund failed at the provider")
    REJECTED = "rejected", _("Rejected")
    CLOSED = "closed", _("Closed")


class DisputeEvent(models.Model):
    """One step of a dispute, shown to the subscriber in their ticket (in
    the language they read it in, so facts are stored, not sentences)."""

    dispute = models.ForeignKey(
        Dispute, on_delete=models.CASCADE, related_name="events", verbose_name=_("dispute")
    )
    kind = models.CharField(_("what happened"), max_length=20, choices=DisputeEventKind.choices)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    refund = models.ForeignKey(
        "payments.Refund",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dispute_events",
        verbose_name=_("refund"),
    )
    # The payment method the money goes back to: how the subscriber is told.
    provider = models.CharField(_("provider"), max_length=20, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    actor = models.CharField(_("by"), max_length=100)
    created_at = models.DateTimeField(_("when"))

    class Meta:
        verbose_name = _("dispute event")
        verbose_name_plural = _("dispute events")
        ordering = ["created_at", "pk"]
        constraints = [
            # A provider confirming twice tells the subscriber once.
            models.UniqueConstraint(
                fields=["refund", "kind"],
                condition=Q(
                    refund__isnull=False, kind__in=["refund_requested", "refund_confirmed"]
                ),
                name="support_dispute_event_refund_kind_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.dispute_id} {self.kind}"
