"""The notification outbox: one row per message leb means to send.

A row is written in the same transaction as the event that causes it (a top-up,
a reminder, an auto-keep charge), so a message exists if and only if its event
happened. Delivery reads due rows later, outside that transaction.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    EMAIL = "email", _("email")
    SMS = "sms", _("SMS")
    WEBHOOK = "webhook", _("webhook")
    # Every channel is switched off: the message is only kept for the
    # notification centre, so the user can still read what leb would have sent.
    CENTRE = "centre", _("notification centre only")


class Status(models.TextChoices):
    PENDING = "pending", _("waiting")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("not sent")
    CANCELLED = "cancelled", _("cancelled")


class Reason(models.TextChoices):
    """Why a message was not sent, in words the centre can show."""

    NONE = "", _("none")
    ALL_CHANNELS_OFF = "all_channels_off", _("All your channels are switched off.")
    VALIDITY_CHANGED = "validity_changed", _("The line was topped up meanwhile.")
    TOO_LATE = "too_late", _("It could not go out before it stopped being useful.")
    OPTED_OUT = "opted_out", _("You switched this channel off.")
    NO_DESTINATION = "no_destination", _("There is no address for this channel.")
    DESTINATION_REFUSED = "destination_refused", _("The address was refused.")
    DELIVERY_FAILED = "delivery_failed", _("The provider did not accept the message.")


class NotificationPreference(models.Model):
    """How one account wants to hear from leb. Language and time zone are the
    account's own (accounts Profile); without a row, email and SMS are on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preference",
        verbose_name=_("user"),
    )
    email_enabled = models.BooleanField(_("email"), default=True)
    email_address = models.EmailField(
        _("email address for notifications"),
        blank=True,
        help_text=_("Leave empty to use your account's email address."),
    )
    sms_enabled = models.BooleanField(_("SMS"), default=True)
    sms_number = models.CharField(
        _("SMS number"),
        max_length=16,
        blank=True,
        help_text=_("Leave empty to use your account's mobile number."),
    )
    webhook_url = models.CharField(_("webhook URL"), max_length=500, blank=True)
    # The webhook signing secret is derived from SECRET_KEY, the user id and
    # this counter; "rotate" moves the counter on.
    webhook_secret_version = models.PositiveIntegerField(_("webhook secret version"), default=0)
    quiet_start = models.TimeField(_("quiet hours start"), null=True, blank=True)
    quiet_end = models.TimeField(_("quiet hours end"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)


class Notification(models.Model):
    # "user:<id>" or "line:<id>": the unique constraint needs a non-null value.
    recipient = models.CharField(_("recipient"), max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("user"),
        # Covered by notification_user_idx (user, -created_at): one index less per insert.
        db_index=False,
    )
    line = models.ForeignKey(
        "lines.Line",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("line"),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    destination = models.CharField(_("destination"), max_length=500, blank=True)
    language = models.CharField(_("language"), max_length=10)
    time_zone = models.CharField(_("time zone"), max_length=64)
    kind = models.CharField(_("kind"), max_length=40)
    context = models.JSONField(_("context"), default=dict, blank=True)
    # Context keys that hold a secret (a code, a sign-in or reset link), comma
    # separated: their values are kept only while the message may still go
    # out, and emptied in the statement that finishes the row.
    secret_keys = models.CharField(_("secret context keys"), max_length=200, blank=True, default="")
    dedupe_key = models.CharField(_("dedupe key"), max_length=200)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    reason = models.CharField(
        _("reason"), max_length=30, choices=Reason.choices, blank=True, default=""
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    deliver_by = models.DateTimeField(_("deliver by"), null=True, blank=True)
    skip_if_validity_changed = models.BooleanField(_("skip if validity changed"), default=False)
    valid_until_snapshot = models.DateTimeField(_("validity when queued"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key", "kind", "recipient", "channel"],
                name="notification_once_per_recipient_channel",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="notification_due_idx",
            ),
            models.Index(fields=["user", "-created_at"], name="notification_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.status}"

    @property
    def secret_key_names(self) -> list[str]:
        return [key for key in self.secret_keys.split(",") if key]

    def scrubbed_context(self) -> dict[str, Any]:
        """The context with every secret value replaced by an empty one."""
        return {
            key: "" if key in self.secret_key_names else value
            for key, value in (self.context or {}).items()
        }

    def masked_context(self) -> dict[str, Any]:
        """The context as staff may see it: secret values hidden."""
        return {
            key: ("••••••" if value else "") if key in self.secret_key_names else value
            for key, value in (self.context or {}).items()
        }
