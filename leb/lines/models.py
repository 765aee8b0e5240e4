from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ExtensionRule(models.TextChoices):
    # new valid_until = max(now, valid_until) + days (common in Hong Kong)
    STACK = "stack", _("Stack: days add to the remaining validity")
    # new valid_until = max(valid_until, now + days)
    RESET = "reset", _("Reset: validity becomes N days from today")


class RefundValidityRule(models.TextChoices):
    KEEP = "keep", _("Keep the validity already granted")
    REVOKE = "revoke", _("Take back the days the refunded top-up granted")


def default_reminder_offsets() -> list[int]:
    return [30, 7, 1]


class NumberPolicy(models.Model):
    """Every lifecycle timer as data: one row per brand or product."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    first_topup_days = models.PositiveIntegerField(
        _("days to first top-up"), help_text=_("validity granted at activation")
    )
    grace_days = models.PositiveIntegerField(_("grace days (receive-only)"))
    suspension_days = models.PositiveIntegerField(_("suspension days (barred)"))
    quarantine_days = models.PositiveIntegerField(_("number quarantine days"))
    max_validity_days = models.PositiveIntegerField(
        _("validity cap (days from today)"), null=True, blank=True
    )
    extension_rule = models.CharField(
        _("extension rule"),
        max_length=10,
        choices=ExtensionRule.choices,
        default=ExtensionRule.STACK,
    )
    number_prefix = models.CharField(
        _("number prefix"),
        max_length=8,
        blank=True,
        help_text=_("activation takes pool numbers starting with this, e.g. +852"),
    )
    reminder_offsets = models.JSONField(
        _("reminder offsets (days before expiry)"), default=default_reminder_offsets
    )
    restore_fee = models.PositiveBigIntegerField(
        _("restore fee (minor units)"),
        default=0,
        help_text=_("taken from the credit of a top-up that restores a suspended line"),
    )
    forfeit_balance_at_termination = models.BooleanField(
        _("forfeit balance at termination"), default=True
    )
    refund_validity_rule = models.CharField(
        _("validity on refund"),
        max_length=10,
        choices=RefundValidityRule.choices,
        default=RefundValidityRule.REVOKE,
    )
    plans_from_balance = models.BooleanField(
        _("plans may be bought from balance"),
        default=False,
        help_text=_("lets a subscriber pay a plan with the line's balance (USSD, hotline)"),
    )
    requires_real_name = models.BooleanField(
        _("real-name registration required"),
        default=False,
        help_text=_(
            "a line is activated, and its eSIM released for download, only after the "
            "subscriber's identity is registered (as Hong Kong requires)"
        ),
    )

    class Meta:
        verbose_name = _("number policy")
        verbose_name_plural = _("number policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_validity_days__isnull=True) | Q(max_validity_days__gte=1),
                name="lines_policy_cap_positive",
            )
        ]

    def __str__(self) -> str:
        return self.name


class NumberStatus(models.TextChoices):
    AVAILABLE = "available", _("Available")
    ASSIGNED = "assigned", _("Assigned")
    QUARANTINED = "quarantined", _("Quarantined")


class PhoneNumber(models.Model):
    msisdn = models.CharField(_("number (E.164)"), max_length=16, unique=True)
    status = models.CharField(
        _("status"), max_length=12, choices=NumberStatus.choices, default=NumberStatus.AVAILABLE
    )
    quarantined_until = models.DateTimeField(_("quarantined until"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("phone number")
        verbose_name_plural = _("phone numbers")
        indexes = [
            models.Index(
                fields=["quarantined_until"],
                condition=Q(status="quarantined"),
                name="lines_number_quarantine_idx",
            ),
            models.Index(fields=["status", "msisdn"], name="lines_number_status_idx"),
        ]

    def __str__(self) -> str:
        return self.msisdn


class LineStatus(models.TextChoices):
    INVENTORY = "inventory", _("Not activated")
    ACTIVE = "active", _("Active")
    GRACE = "grace", _("Grace (receive-only)")
    SUSPENDED = "suspended", _("Suspended")
    TERMINATED = "terminated", _("Terminated")


class Line(models.Model):
    # Unique through a constraint, not unique=True: on PostgreSQL that would add
    # a second (LIKE) index that every write to the line must also update.
    iccid = models.CharField(_("ICCID"), max_length=20)
    eid = models.CharField(_("EID"), max_length=32, blank=True, default="")
    activation_code = models.CharField(
        _("activation code"), max_length=255, blank=True, help_text=_("SGP.22, without LPA:")
    )
    phone_number = models.ForeignKey(
        PhoneNumber,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lines",
        verbose_name=_("phone number"),
    )
    policy = models.ForeignKey(
        NumberPolicy, on_delete=models.PROTECT, related_name="lines", verbose_name=_("policy")
    )
    currency = models.CharField(_("currency"), max_length=3)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="lines",
        verbose_name=_("owner"),
    )
    status = models.CharField(
        _("status"), max_length=12, choices=LineStatus.choices, default=LineStatus.INVENTORY
    )
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    terminated_at = models.DateTimeField(_("terminated"), null=True, blank=True)
    # When the stored status next changes if nobody tops up; the sweep selects on it.
    next_transition_at = models.DateTimeField(_("next transition"), null=True, blank=True)
    wallet = models.OneToOneField(
        "ledger.Account",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="line",
        verbose_name=_("wallet account"),
    )
    installed_at = models.DateTimeField(_("eSIM installed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("line")
        verbose_name_plural = _("lines")
        constraints = [
            # A number belongs to at most one line that is not terminated.
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=~Q(status="terminated"),
                name="lines_line_one_live_line_per_number",
            ),
            models.UniqueConstraint(fields=["iccid"], name="lines_line_iccid_unique"),
        ]
        indexes = [
            models.Index(
                fields=["next_transition_at"],
                condition=Q(next_transition_at__isnull=False),
                name="lines_line_due_idx",
            ),
            # Reminders look lines up by how far their validity is from now.
            models.Index(
                fields=["valid_until"],
                condition=Q(valid_until__isnull=False) & ~Q(status="terminated"),
                name="lines_line_valid_until_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.phone_number.msisdn if self.phone_number_id else self.iccid  # type: ignore[union-attr]

    @property
    def msisdn(self) -> str:
        return self.phone_number.msisdn if self.phone_number else ""


class LineEventKind(models.TextChoices):
    CREATED = "created", _("Created")
    ACTIVATED = "activated", _("Activated")
    TOPPED_UP = "topped_up", _("Topped up")
    STATUS_CHANGED = "status_changed", _("Status changed")
    BALANCE_FORFEITED = "balance_forfeited", _("Balance forfeited")
    NUMBER_QUARANTINED = "number_quarantined", _("Number quarantined")
    REFUNDED = "refunded", _("Top-up refunded")
    OWNER_CHANGED = "owner_changed", _("Owner changed")
    REAL_NAME_REGISTERED = "real_name_registered", _("Real-name registered")


class LineEvent(models.Model):
    """Append-only history of a line."""

    # Indexed by lines_event_line_idx (line, happened_at), which also serves the FK.
    line = models.ForeignKey(
        Line,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        verbose_name=_("line"),
    )
    kind = models.CharField(_("kind"), max_length=24, choices=LineEventKind.choices)
    from_status = models.CharField(_("from"), max_length=12, blank=True)
    to_status = models.CharField(_("to"), max_length=12, blank=True)
    # When it happened by the line's dates; recorded_at is when leb wrote it.
    happened_at = models.DateTimeField(_("happened"))
    recorded_at = models.DateTimeField(_("recorded"))
    valid_until = models.DateTimeField(_("valid until after"), null=True, blank=True)
    actor = models.CharField(_("actor"), max_length=100, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("line event")
        verbose_name_plural = _("line events")
        indexes = [models.Index(fields=["line", "happened_at"], name="lines_event_line_idx")]
        ordering = ["happened_at", "pk"]

    def __str__(self) -> str:
        return f"{self.line_id} {self.kind} {self.happened_at:%Y-%m-%d}"


class DocumentType(models.TextChoices):
    HKID = "hkid", _("Hong Kong identity card")
    PASSPORT = "passport", _("Passport")
    MAINLAND_PERMIT = "mainland_permit", _("Mainland travel permit")
    OTHER = "other", _("Other identity document")


class RealNameRegistration(models.Model):
    """Who a line is registered to, where the policy requires it. The document
    number is kept only as a keyed HMAC (to find a re-used document) and its
    last four characters (to read back to the subscriber); never in clear."""

    line = models.OneToOneField(
        Line,
        on_delete=models.PROTECT,
        related_name="real_name",
        verbose_name=_("line"),
    )
    full_name = models.CharField(_("full name"), max_length=200)
    document_type = models.CharField(
        _("document type"), max_length=20, choices=DocumentType.choices
    )
    document_hmac = models.CharField(_("document fingerprint"), max_length=64, db_index=True)
    document_last4 = models.CharField(_("document number (last 4)"), max_length=4)
    registered_at = models.DateTimeField(_("registered"))
    registered_by = models.CharField(_("registered by"), max_length=100)

    class Meta:
        verbose_name = _("real-name registration")
        verbose_name_plural = _("real-name registrations")

    def __str__(self) -> str:
        return f"{self.line_id} ****{self.document_last4}"
