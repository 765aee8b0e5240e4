"""Authorised agents (resellers): their terms, float deposits, API keys and
the top-ups they sell. Money is in integer minor units of the agent's currency."""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from leb.common import clock
from leb.lines.identifiers import normalize_msisdn


class AgentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    TERMINATED = "terminated", _("Terminated")


PERCENT_VALIDATORS = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class Agent(models.Model):
    code = models.CharField(
        _("public code"),
        max_length=16,
        unique=True,
        editable=False,
        help_text=_("Short code the agent and subscribers quote, e.g. HK-A1B2C3."),
    )
    legal_name = models.CharField(_("legal name"), max_length=200)
    display_name = models.CharField(_("display name"), max_length=100)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    region = models.CharField(_("region"), max_length=2, help_text=_("ISO 3166 country code."))
    currency = models.CharField(_("float currency"), max_length=3)
    status = models.CharField(
        _("status"), max_length=12, choices=AgentStatus.choices, default=AgentStatus.ACTIVE
    )
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    suspended_at = models.DateTimeField(_("suspended"), null=True, blank=True)
    terminated_at = models.DateTimeField(_("terminated"), null=True, blank=True)
    allowed_plan_codes = models.JSONField(
        _("allowed plan codes"),
        default=list,
        blank=True,
        help_text=_("Empty: every plan in the agent's currency sold on the agent channel."),
    )
    max_transaction_amount = models.PositiveBigIntegerField(
        _("largest top-up (minor units)"),
        null=True,
        blank=True,
        help_text=_("Wholesale price of one top-up; empty: no limit."),
    )
    daily_count_limit = models.PositiveIntegerField(
        _("top-ups per day"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    daily_amount_limit = models.PositiveBigIntegerField(
        _("wholesale amount per day (minor units)"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit."),
    )
    discount_percent = models.DecimalField(
        _("wholesale discount (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=PERCENT_VALIDATORS,
    )
    callback_url = models.URLField(_("callback URL"), blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        permissions = [("view_agent_sales", _("Can view agent sales and commission"))]

    def __str__(self) -> str:
        return f"{self.code} {self.display_name}"

    @property
    def actor(self) -> str:
        return f"agent:{self.code}"


class AgentPlanDiscount(models.Model):
    """A wholesale discount for one plan that replaces the agent's default."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="plan_discounts", verbose_name=_("agent")
    )
    plan_code = models.CharField(_("plan code"), max_length=40)
    discount_percent = models.DecimalField(
        _("wholesale discount (%)"), max_digits=5, decimal_places=2, validators=PERCENT_VALIDATORS
    )

    class Meta:
        verbose_name = _("plan discount")
        verbose_name_plural = _("plan discounts")
        constraints = [
            models.UniqueConstraint(fields=["agent", "plan_code"], name="agents_plan_discount_once")
        ]

    def __str__(self) -> str:
        return f"{self.plan_code}: {self.discount_percent}%"


class DepositStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class AgentDeposit(models.Model):
    """Money the agent paid into leb's bank account, credited to the float
    only once a second staff member approves it."""

    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="deposits", verbose_name=_("agent")
    )
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(_("currency"), max_length=3)
    bank_reference = models.CharField(_("bank reference"), max_length=100)
    status = models.CharField(
        _("status"), max_length=10, choices=DepositStatus.choices, default=DepositStatus.PENDING
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved or rejected by"),
    )
    decided_at = models.DateTimeField(_("approved or rejected"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("agent deposit")
        verbose_name_plural = _("agent deposits")
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "bank_reference"], name="agents_deposit_reference_once"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="agents_deposit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.agent.code} {self.bank_reference}"


class AgentApiKey(models.Model):
    """A key id with a secret derived from it (see leb.agents.signing): the
    secret itself is never stored."""

    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("agent")
    )
    key_id = models.CharField(_("key id"), max_length=40, unique=True, editable=False)
    salt = models.CharField(_("salt"), max_length=64, editable=False)
    label = models.CharField(_("label"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"))
    valid_until = models.DateTimeField(
        _("valid until"),
        null=True,
        blank=True,
        help_text=_("Set when the key is rotated: the old key works until then."),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("agent API key")
        verbose_name_plural = _("agent API keys")

    def __str__(self) -> str:
        return self.key_id


class AgentNonce(models.Model):
    """Nonces seen inside the signature window: a replayed request is refused."""

    key = models.ForeignKey(AgentApiKey, on_delete=models.CASCADE, verbose_name=_("key"))
    nonce = models.CharField(_("nonce"), max_length=64)
    seen_at = models.DateTimeField(_("seen"), db_index=True)

    class Meta:
        verbose_name = _("signature nonce")
        verbose_name_plural = _("signature nonces")
        constraints = [
            models.UniqueConstraint(fields=["key", "nonce"], name="agents_nonce_once_per_key")
        ]

    def __str__(self) -> str:
        return self.nonce


class TopUpMode(models.TextChoices):
    INSTANT = "instant", _("Instant")
    TWO_STEP = "two_step", _("Two-step (reserve, then confirm)")


class AgentTopUpStatus(models.TextChoices):
    CREATED = "created", _("Created, float reserved")
    CONFIRMED = "confirmed", _("Confirmed")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired, reservation released")
    REVERSED = "reversed", _("Reversed")


class FailureReason(models.TextChoices):
    INSUFFICIENT_FLOAT = "insufficient_float", _("Not enough float")
    LIMIT_REACHED = "limit_reached", _("A limit was reached")
    LINE_TERMINATED = "line_terminated", _("The line cannot be topped up")
    PLAN_NOT_ALLOWED = "plan_not_allowed", _("The plan may not be sold by this agent")
    RECENTLY_TOPPED_UP = "recently_topped_up", _("The same top-up was just sold")
    ADDS_NOTHING = "adds_nothing", _("The top-up would add nothing")


class AgentTopUp(models.Model):
    """One sale request of an agent, identified by the agent's external id.
    A refused request is kept (failed, with its reason) so the agent can
    always learn the outcome by external id."""

    public_id = models.CharField(_("reference"), max_length=32, unique=True, editable=False)
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="topups", verbose_name=_("agent")
    )
    external_id = models.CharField(_("external id"), max_length=64)
    request_hash = models.CharField(_("request hash"), max_length=64)
    msisdn = models.CharField(_("phone number"), max_length=20)
    plan_code = models.CharField(_("plan code"), max_length=40)
    mode = models.CharField(_("mode"), max_length=10, choices=TopUpMode.choices)
    status = models.CharField(_("status"), max_length=10, choices=AgentTopUpStatus.choices)
    reason = models.CharField(_("reason"), max_length=20, choices=FailureReason.choices, blank=True)
    reason_detail = models.CharField(_("reason detail"), max_length=40, blank=True)
    order = models.OneToOneField(
        "topups.TopUpOrder",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="agent_topup",
        verbose_name=_("top-up order"),
    )
    currency = models.CharField(_("currency"), max_length=3)
    wholesale_price = models.PositiveBigIntegerField(_("wholesale price (minor units)"), default=0)
    retail_price = models.PositiveBigIntegerField(_("retail price (minor units)"), default=0)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("confirm by"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    finished_at = models.DateTimeField(_("failed, expired or reversed"), null=True, blank=True)

    class Meta:
        verbose_name = _("agent top-up")
        verbose_name_plural = _("agent top-ups")
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "external_id"], name="agents_topup_external_id_once"
            )
        ]
        indexes = [
            models.Index(fields=["agent", "-created_at"], name="agents_topup_agent_idx"),
            models.Index(
                fields=["expires_at"], condition=Q(status="created"), name="agents_topup_open_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent.code}:{self.external_id}"

    @property
    def ledger_key(self) -> str:
        return f"agent:{self.agent.code}:{self.external_id}"


class ChannelKind(models.TextChoices):
    SHOP_URL = "shop_url", _("Shop address (URL)")
    HANDLE = "handle", _("Social media handle")
    PHONE = "phone", _("Phone number")


_URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def normalise_url(value: str) -> str:
    """shop.example.com/kowloon: no scheme, no "www.", the host lowercased,
    no fragment and no trailing slash, so a pasted link matches what staff typed."""
    text = (value or "").strip()
    text = _URL_SCHEME.sub("", text).split("#", 1)[0]
    host, slash, rest = text.partition("/")
    host = host.lower().removeprefix("www.")
    return (host + slash + rest).rstrip("/")


def normalise_handle(value: str) -> str:
    return (value or "").strip().lstrip("@").strip().lower()


def normalise_channel(kind: str, value: str) -> str:
    """The stored and searched form of a channel; ValidationError for a bad phone."""
    if kind == ChannelKind.PHONE:
        return normalize_msisdn(value)
    if kind == ChannelKind.SHOP_URL:
        return normalise_url(value)
    return normalise_handle(value)


class AgentChannel(models.Model):
    """An official sales channel staff registered for an agent: what the
    public check matches a shop link, a handle or a phone number against."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="channels", verbose_name=_("agent")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ChannelKind.choices)
    value = models.CharField(
        _("address, handle or number"),
        max_length=200,
        help_text=_(
            "Stored normalised: a URL without https:// and trailing slash, a handle "
            "without @, a phone number in international format."
        ),
    )
    label = models.CharField(
        _("platform"),
        max_length=60,
        blank=True,
        help_text=_("Shown to the public, e.g. WeChat, Instagram, HKTVmall."),
    )

    class Meta:
        verbose_name = _("official channel")
        verbose_name_plural = _("official channels")
        ordering = ["kind", "value"]
        constraints = [
            # One channel names one agent, so a search never finds two.
            models.UniqueConstraint(fields=["kind", "value"], name="agents_channel_once")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.value:
            # full_clean reports a bad value; a raw save keeps what it was given.
            with contextlib.suppress(ValidationError):
                self.value = normalise_channel(self.kind, self.value)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not (self.value or "").strip():
            raise ValidationError({"value": _("Enter the address, handle or number.")})
        try:
            self.value = normalise_channel(self.kind, self.value)
        except ValidationError as exc:
            raise ValidationError({"value": exc.messages}) from exc
        if not self.value:
            raise ValidationError({"value": _("Enter the address, handle or number.")})


class MemberRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    SELLER = "seller", _("Seller")


class AgentMember(models.Model):
    """A person who signs in to the agent portal for one agent. An owner also
    manages the API keys and the callback URL; a seller sells and reads."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_member",
        verbose_name=_("user"),
        help_text=_("A user belongs to at most one agent."),
    )
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="members", verbose_name=_("agent")
    )
    role = models.CharField(
        _("role"), max_length=10, choices=MemberRole.choices, default=MemberRole.SELLER
    )
    created_at = models.DateTimeField(_("created"), default=clock.now)

    class Meta:
        verbose_name = _("portal member")
        verbose_name_plural = _("portal members")
        ordering = ["agent", "role", "user"]

    def __str__(self) -> str:
        return f"{self.agent.code}: {self.user} ({self.role})"

    @property
    def is_owner(self) -> bool:
        return self.role == MemberRole.OWNER

    @property
    def actor(self) -> str:
        """The audit actor: which person of which agent did it."""
        return f"agent:{self.agent.code}:member:{self.user.get_username()}"[:100]
