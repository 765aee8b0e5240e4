"""eSIM profiles as the SM-DP+ sees them, their history, and every ES2+ call.

A line (leb.lines) knows its ICCID; its Profile here holds where that profile
is in GSMA SGP.22 remote provisioning. Only leb.provisioning.actions write
these rows.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ProfileState(models.TextChoices):
    # In the operator's SM-DP+ stock, no order for it.
    AVAILABLE = "available", _("Available")
    # ES2+ downloadOrder succeeded: allocated to this line (SGP.22 "Allocated"/"Linked").
    RESERVED = "reserved", _("Reserved")
    # ES2+ confirmOrder with releaseFlag false: ordered, held until releaseProfile.
    CONFIRMED = "confirmed", _("Confirmed (held)")
    # Confirmed and released: the activation code works now (SGP.22 "Released").
    RELEASED = "released", _("Ready to download")
    # The phone fetched the profile (notification point 3, BPP download).
    DOWNLOADED = "downloaded", _("Downloaded")
    # The phone installed it (notification point 4, BPP installation).
    INSTALLED = "installed", _("Installed")
    # Removed from the phone (notification point 5).
    DELETED = "deleted", _("Deleted from the phone")
    # ES2+ cancelOrder: the order is void; the code no longer works.
    CANCELLED = "cancelled", _("Order cancelled")


# States in which the subscriber's activation code can be used.
USABLE_STATES = frozenset({ProfileState.RELEASED})
# States from which a new order (downloadOrder) may start.
ORDERABLE_STATES = frozenset({ProfileState.AVAILABLE, ProfileState.CANCELLED})


class Profile(models.Model):
    line = models.OneToOneField(
        "lines.Line",
        on_delete=models.PROTECT,
        related_name="esim_profile",
        verbose_name=_("line"),
    )
    iccid = models.CharField(_("ICCID"), max_length=20, unique=True)
    state = models.CharField(
        _("state"), max_length=12, choices=ProfileState.choices, default=ProfileState.AVAILABLE
    )
    eid = models.CharField(_("EID"), max_length=32, blank=True)
    matching_id = models.CharField(_("matching ID"), max_length=64, blank=True)
    smdp_address = models.CharField(_("SM-DP+ address"), max_length=255, blank=True)
    # SGP.22 activation code without "LPA:"; only shown while the state is usable.
    activation_code = models.CharField(_("activation code"), max_length=255, blank=True)
    confirmation_code_required = models.BooleanField(_("confirmation code required"), default=False)
    # The newest notification timestamp applied: an older one arriving later
    # is recorded in the history but does not move the state back.
    last_notification_at = models.DateTimeField(_("last notification"), null=True, blank=True)
    state_changed_at = models.DateTimeField(_("state changed"))
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("eSIM profile")
        verbose_name_plural = _("eSIM profiles")
        indexes = [models.Index(fields=["matching_id"], name="prov_profile_matching_idx")]

    def __str__(self) -> str:
        return self.iccid

    @property
    def activation_code_usable(self) -> bool:
        return self.state in USABLE_STATES and bool(self.activation_code)


class ProfileEventKind(models.TextChoices):
    ORDERED = "ordered", _("Download order placed")
    CONFIRMED = "confirmed", _("Order confirmed")
    RELEASED = "released", _("Released for download")
    CANCELLED = "cancelled", _("Order cancelled")
    ELIGIBILITY = "eligibility", _("Eligibility checked")
    CONFIRMATION_FAILED = "confirmation_failed", _("Confirmation code refused")
    DOWNLOADED = "downloaded", _("Downloaded to the phone")
    INSTALLED = "installed", _("Installed on the phone")
    ENABLED = "enabled", _("Enabled on the phone")
    DISABLED = "disabled", _("Disabled on the phone")
    DELETED = "deleted", _("Deleted from the phone")
    FAILED = "failed", _("Step failed on the phone")
    REDOWNLOAD = "redownload", _("Download again requested")


class ProfileEvent(models.Model):
    """Append-only history of a profile: what leb asked the SM-DP+ and what it reported."""

    profile = models.ForeignKey(
        Profile, on_delete=models.PROTECT, related_name="events", verbose_name=_("profile")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ProfileEventKind.choices)
    from_state = models.CharField(_("from"), max_length=12, blank=True)
    to_state = models.CharField(_("to"), max_length=12, blank=True)
    # When it happened (the SM-DP+'s timestamp for notifications); recorded_at is when leb wrote it.
    happened_at = models.DateTimeField(_("happened"))
    recorded_at = models.DateTimeField(_("recorded"))
    eid = models.CharField(_("EID"), max_length=32, blank=True)
    actor = models.CharField(_("actor"), max_length=100, blank=True)
    # False for a notification older than one already applied (out of order).
    applied = models.BooleanField(_("changed the state"), default=True)
    # Notifications only: the same event delivered twice is recorded once.
    dedupe_key = models.CharField(  # noqa: DJ001 (NULL: many rows without a key under a unique index)
        _("notification key"), max_length=64, null=True, blank=True
    )
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("eSIM profile event")
        verbose_name_plural = _("eSIM profile events")
        ordering = ["happened_at", "pk"]
        indexes = [models.Index(fields=["profile", "happened_at"], name="prov_event_profile_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="prov_event_dedupe_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.kind} {self.happened_at:%Y-%m-%d %H:%M}"


class CallStatus(models.TextChoices):
    PENDING = "pending", _("Sent, no answer yet")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Refused by the SM-DP+")


class Es2Call(models.Model):
    """One ES2+ function call. Written (with its functionCallIdentifier)
    before the request is sent, so a retry after a timeout sends the same
    identifier and the SM-DP+ can recognise the repeat."""

    function = models.CharField(_("function"), max_length=40)
    function_call_id = models.UUIDField(
        _("function call identifier"), default=uuid.uuid4, unique=True
    )
    profile = models.ForeignKey(
        Profile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
        verbose_name=_("profile"),
    )
    # What was asked, without the header; a confirmation code is never kept.
    request_key = models.CharField(_("request fingerprint"), max_length=64)
    request = models.JSONField(_("request"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=CallStatus.choices, default=CallStatus.PENDING
    )
    execution_status = models.CharField(_("execution status"), max_length=30, blank=True)
    subject_code = models.CharField(_("subject code"), max_length=20, blank=True)
    reason_code = models.CharField(_("reason code"), max_length=20, blank=True)
    message = models.TextField(_("message"), blank=True)
    response = models.JSONField(_("response"), default=dict, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    actor = models.CharField(_("actor"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("ES2+ call")
        verbose_name_plural = _("ES2+ calls")
        indexes = [
            models.Index(fields=["profile", "function", "status"], name="prov_call_pending_idx")
        ]

    def __str__(self) -> str:
        return f"{self.function} {self.function_call_id}"


# --- The built-in SM-DP+ simulator's own state (never used against a real SM-DP+) ---


class SimulatedProfileState(models.TextChoices):
    AVAILABLE = "available", _("Available")
    ALLOCATED = "allocated", _("Allocated")
    LINKED = "linked", _("Linked to an EID")
    CONFIRMED = "confirmed", _("Confirmed")
    RELEASED = "released", _("Released")
    DOWNLOADED = "downloaded", _("Downloaded")
    INSTALLED = "installed", _("Installed")
    DELETED = "deleted", _("Deleted")
    UNAVAILABLE = "unavailable", _("Unavailable")


class SimulatedProfile(models.Model):
    """A profile in the simulator's stock, as a real SM-DP+ keeps it."""

    iccid = models.CharField(_("ICCID"), max_length=20, unique=True)
    profile_type = models.CharField(_("profile type"), max_length=64, default="leb-prepaid")
    state = models.CharField(
        _("state"),
        max_length=12,
        choices=SimulatedProfileState.choices,
        default=SimulatedProfileState.AVAILABLE,
    )
    eid = models.CharField(_("EID"), max_length=32, blank=True)
    matching_id = models.CharField(_("matching ID"), max_length=64, blank=True, db_index=True)
    confirmation_code_hash = models.CharField(
        _("confirmation code hash"), max_length=64, blank=True
    )
    order_expires_at = models.DateTimeField(_("order expires"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("simulated SM-DP+ profile")
        verbose_name_plural = _("simulated SM-DP+ profiles")

    def __str__(self) -> str:
        return self.iccid


class SimulatedCall(models.Model):
    """The simulator's answer to each functionCallIdentifier, replayed for a repeat."""

    function_call_id = models.CharField(_("function call identifier"), max_length=100, unique=True)
    function = models.CharField(_("function"), max_length=40)
    response = models.JSONField(_("response"))
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("simulated ES2+ call")
        verbose_name_plural = _("simulated ES2+ calls")

    def __str__(self) -> str:
        return self.function_call_id
