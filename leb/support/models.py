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
