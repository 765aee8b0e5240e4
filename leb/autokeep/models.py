"""Saved payment methods and the auto-keep rules that charge them.

A saved method holds only what the provider gives back after tokenising a
card (customer and method references, brand, last four digits, expiry): never
a card number or a security code."""

from __future__ import annotations

import calendar
import uuid
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def card_expires_on(exp_month: int, exp_year: int) -> date:
    """Cards are valid through the last day of their expiry month."""
    return date(exp_year, exp_month, calendar.monthrange(exp_year, exp_month)[1])


class MethodStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    REMOVED = "removed", _("Removed")


class SavedPaymentMethod(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saved_payment_methods",
        verbose_name=_("user"),
    )
    provider = models.CharField(_("provider"), max_length=20)
    customer_reference = models.CharField(_("provider customer reference"), max_length=255)
    method_reference = models.CharField(_("provider method reference"), max_length=255)
    brand = models.CharField(_("brand"), max_length=30, blank=True)
    last4 = models.CharField(_("last four digits"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    status = models.CharField(
        _("status"), max_length=10, choices=MethodStatus.choices, default=MethodStatus.ACTIVE
    )
    created_at = models.DateTimeField(_("created"))
    removed_at = models.DateTimeField(_("removed"), null=True, blank=True)
    # When to warn that the card is about to expire, and whether that happened.
    expiry_warn_at = models.DateTimeField(_("expiry warning due"), null=True, blank=True)
    expiry_warned_at = models.DateTimeField(_("expiry warning sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("saved payment method")
        verbose_name_plural = _("saved payment methods")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "method_reference"], name="autokeep_method_reference_uniq"
            )
        ]
        indexes = [
            models.Index(
                fields=["expiry_warn_at"],
                condition=Q(status="active", expiry_warned_at__isnull=True),
                name="autokeep_method_warn_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4}"

    @property
    def expires_on(self) -> date:
        """The last day the card can be used."""
        return card_expires_on(self.exp_month, self.exp_year)

    @property
    def is_active(self) -> bool:
        return self.status == MethodStatus.ACTIVE


class SetupStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class MethodSetup(models.Model):
    """One visit to a provider's hosted "save a card" page."""

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="payment_method_setups",
        verbose_name=_("user"),
    )
    provider = models.CharField(_("provider"), max_length=20)
    provider_reference = models.CharField(_("provider reference"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=SetupStatus.choices, default=SetupStatus.PENDING
    )
    method = models.ForeignKey(
        SavedPaymentMethod,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="setups",
        verbose_name=_("saved payment method"),
    )
    # Where to continue once the card is saved (e.g. a line's auto-keep form).
    next_url = models.CharField(_("continue at"), max_length=300, blank=True)
    failure_message = models.CharField(_("failure message"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment method setup")
        verbose_name_plural = _("payment method setups")

    def __str__(self) -> str:
        return f"{self.provider}:{self.public_id}"


class RuleMode(models.TextChoices):
    THRESHOLD = "threshold", _("Top up a plan when few days are left")
    CHEAPEST = "cheapest", _("Keep my number at the lowest cost")


class AutoKeepRule(models.Model):
    line = models.OneToOneField(
        "lines.Line", on_delete=models.CASCADE, related_name="autokeep_rule", verbose_name=_("line")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="autokeep_rules",
        verbose_name=_("user"),
    )
    method = models.ForeignKey(
        SavedPaymentMethod,
        on_delete=models.PROTECT,
        related_name="rules",
        verbose_name=_("saved payment method"),
    )
    mode = models.CharField(_("mode"), max_length=10, choices=RuleMode.choices)
    plan = models.ForeignKey(
        "catalog.Plan",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("plan"),
    )
    days_before = models.PositiveSmallIntegerField(_("days left"), null=True, blank=True)
    until = models.DateField(_("keep until"), null=True, blank=True)
    allow_grace = models.BooleanField(_("may use the grace period"), default=False)
    paused = models.BooleanField(_("paused"), default=False)
    paused_reason = models.CharField(_("paused because"), max_length=30, blank=True)
    # Failed attempts in the current period.
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    next_check_at = models.DateTimeField(_("next check"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        verbose_name = _("auto-keep rule")
        verbose_name_plural = _("auto-keep rules")
        indexes = [
            models.Index(
                fields=["next_check_at"],
                condition=Q(paused=False, next_check_at__isnull=False),
                name="autokeep_rule_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.line_id}:{self.mode}"


class RunStatus(models.TextChoices):
    STARTED = "started", _("Started")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    # Nothing charged: the top-up would have added no days (validity cap or reset rule).
    SKIPPED = "skipped", _("Skipped")


class AutoKeepRun(models.Model):
    """One charge for one threshold crossing. `period` is the line's
    valid_until when the threshold was crossed: the unique constraint makes
    each (period, attempt) happen once, however often or widely the job runs."""

    rule = models.ForeignKey(
        AutoKeepRule, on_delete=models.CASCADE, related_name="runs", verbose_name=_("rule")
    )
    period = models.DateTimeField(_("period (valid until)"))
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    order = models.ForeignKey(
        "topups.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("order"),
    )
    plan_code = models.CharField(_("plan"), max_length=40, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.STARTED
    )
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("auto-keep run")
        verbose_name_plural = _("auto-keep runs")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "period", "attempt"], name="autokeep_run_once_uniq"
            )
        ]
        indexes = [models.Index(fields=["rule", "-created_at"], name="autokeep_run_rule_idx")]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.period:%Y-%m-%d}#{self.attempt}"
