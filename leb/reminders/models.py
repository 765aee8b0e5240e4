from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ReminderKind(models.TextChoices):
    EXPIRY = "expiry_reminder", _("Validity ends soon")
    GRACE = "grace_started", _("Receive-only (grace) started")
    SUSPENDED = "line_suspended", _("Line suspended")
    LOSS = "number_loss_warning", _("Number about to be lost")


class ReminderOutcome(models.TextChoices):
    SENT = "sent", _("Sent")
    # Became due while the job was not running and a more urgent one was sent instead.
    SKIPPED = "skipped", _("Skipped (superseded)")


class SentReminder(models.Model):
    """A reminder that fired for one line, kind, offset and validity period.
    The unique constraint is what makes each of them go out at most once."""

    # Indexed by the unique constraint, which starts with line.
    line = models.ForeignKey(
        "lines.Line",
        on_delete=models.PROTECT,
        related_name="reminders",
        db_index=False,
        verbose_name=_("line"),
    )
    kind = models.CharField(_("kind"), max_length=24, choices=ReminderKind.choices)
    offset_days = models.PositiveIntegerField(_("days before"))
    # The valid_until the reminder was computed from: a top-up starts a new period.
    period = models.DateTimeField(_("validity period (valid until)"))
    outcome = models.CharField(_("outcome"), max_length=8, choices=ReminderOutcome.choices)
    due_at = models.DateTimeField(_("due"))
    deliver_by = models.DateTimeField(_("useful until"))
    created_at = models.DateTimeField(_("recorded"))

    class Meta:
        verbose_name = _("sent reminder")
        verbose_name_plural = _("sent reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["line", "kind", "offset_days", "period"],
                name="reminders_once_per_line_kind_offset_period",
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="reminders_sent_created_idx")]

    def __str__(self) -> str:
        return f"{self.line_id} {self.kind} {self.offset_days} {self.period:%Y-%m-%d}"


class ScanMark(models.Model):
    """How far the reminder scan has looked: the `now` of the last complete
    scan. The next scan looks back only to it (plus an overlap), so its cost
    follows the reminders that fell due since, not every line near expiry."""

    name = models.CharField(_("name"), max_length=40, primary_key=True)
    scanned_until = models.DateTimeField(_("scanned until"))

    class Meta:
        verbose_name = _("reminder scan mark")
        verbose_name_plural = _("reminder scan marks")

    def __str__(self) -> str:
        return f"{self.name} {self.scanned_until:%Y-%m-%d %H:%M}"


class CalendarFeed(models.Model):
    """The secret calendar link of a line. The token is never stored: it is an
    HMAC of the line, its owner and `rotation`; rotating makes old links fail."""

    line = models.OneToOneField(
        "lines.Line",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="calendar_feed",
        verbose_name=_("line"),
    )
    rotation = models.PositiveIntegerField(_("rotation"), default=0)
    rotated_at = models.DateTimeField(_("last new link"), null=True, blank=True)
    rotated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("new link made by"),
    )

    class Meta:
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")

    def __str__(self) -> str:
        return f"{self.line_id} #{self.rotation}"
