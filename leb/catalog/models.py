from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    IVR = "ivr", _("Phone (IVR)")
    USSD = "ussd", _("USSD")
    AGENT = "agent", _("Agent")
    VOUCHER = "voucher", _("Voucher")
    AUTO = "auto", _("Auto-keep")
    ADMIN = "admin", _("Staff")


def all_channels() -> list[str]:
    return [c.value for c in Channel]


class TranslatedNameMixin(models.Model):
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_zh_hans = models.CharField(_("name (Simplified Chinese)"), max_length=100)
    name_zh_hant = models.CharField(_("name (Traditional Chinese)"), max_length=100)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.display_name()

    def display_name(self, language: str | None = None) -> str:
        language = (language or translation.get_language() or "en").lower()
        if language.startswith("zh-hant") or language in ("zh-hk", "zh-tw", "zh-mo"):
            return self.name_zh_hant or self.name_en
        if language.startswith("zh"):
            return self.name_zh_hans or self.name_en
        return self.name_en


class Plan(TranslatedNameMixin):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    currency = models.CharField(_("currency"), max_length=3)
    price = models.PositiveBigIntegerField(_("price (minor units)"))
    credit = models.PositiveBigIntegerField(_("credit granted (minor units)"))
    validity_days = models.PositiveIntegerField(_("validity days granted"))
    channels = models.JSONField(_("channels"), default=all_channels)
    is_active = models.BooleanField(_("active"), default=True)
    active_from = models.DateTimeField(_("on sale from"), null=True, blank=True)
    active_until = models.DateTimeField(_("on sale until"), null=True, blank=True)
    sort_order = models.IntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["currency", "sort_order", "price"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="catalog_plan_price_positive"),
        ]


class FreeAmountRule(models.Model):
    """Top up any amount between min and max; validity days depend on the amount."""

    currency = models.CharField(_("currency"), max_length=3, unique=True)
    min_amount = models.PositiveBigIntegerField(_("minimum (minor units)"))
    max_amount = models.PositiveBigIntegerField(_("maximum (minor units)"))
    # [[min_amount, validity_days], ...]: the highest tier whose minimum the amount reaches.
    tiers = models.JSONField(_("validity tiers"), default=list)
    channels = models.JSONField(_("channels"), default=all_channels)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("free-amount rule")
        verbose_name_plural = _("free-amount rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(min_amount__gt=0) & Q(max_amount__gte=models.F("min_amount")),
                name="catalog_free_amount_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.min_amount}-{self.max_amount}"

    def validity_days_for(self, amount: int) -> int:
        days = 0
        for minimum, tier_days in sorted(self.tiers):
            if amount >= minimum:
                days = int(tier_days)
        return days


class Promotion(TranslatedNameMixin):
    code = models.SlugField(_("internal code"), max_length=40, unique=True)
    # Empty: applied automatically when it matches. Otherwise the subscriber types it.
    promo_code = models.CharField(_("promo code"), max_length=40, blank=True, db_index=True)
    currency = models.CharField(_("currency"), max_length=3)
    bonus_credit_percent = models.PositiveIntegerField(
        _("bonus credit (percent of credit)"), default=0
    )
    bonus_credit_fixed = models.PositiveBigIntegerField(_("bonus credit (minor units)"), default=0)
    bonus_days = models.PositiveIntegerField(_("bonus validity days"), default=0)
    discount_percent = models.PositiveIntegerField(_("discount (percent of price)"), default=0)
    discount_fixed = models.PositiveBigIntegerField(_("discount (minor units)"), default=0)
    channels = models.JSONField(_("channels (empty: all)"), default=list, blank=True)
    plans = models.ManyToManyField(Plan, blank=True, verbose_name=_("plans (empty: all)"))
    applies_to_free_amount = models.BooleanField(_("applies to free amounts"), default=False)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    per_line_limit = models.PositiveIntegerField(_("uses per line"), null=True, blank=True)
    budget = models.PositiveBigIntegerField(
        _("budget (minor units)"), null=True, blank=True, help_text=_("bonus credit plus discounts")
    )
    budget_used = models.PositiveBigIntegerField(_("budget reserved or used"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__lte=100) & Q(bonus_credit_percent__lte=1000),
                name="catalog_promotion_percent_range",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="catalog_promotion_window"
            ),
        ]


class RedemptionState(models.TextChoices):
    RESERVED = "reserved", _("Reserved by an unpaid order")
    USED = "used", _("Used")
    RELEASED = "released", _("Released")


class PromotionRedemption(models.Model):
    """A promotion's budget held for one order: reserved when the order is
    created, used when it is fulfilled, released when it expires or fails."""

    promotion = models.ForeignKey(
        Promotion,
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("promotion"),
    )
    line = models.ForeignKey(
        "lines.Line",
        on_delete=models.PROTECT,
        related_name="promotion_redemptions",
        verbose_name=_("line"),
    )
    order_ref = models.CharField(_("order"), max_length=64, unique=True)
    cost = models.PositiveBigIntegerField(_("cost (minor units)"))
    state = models.CharField(_("state"), max_length=10, choices=RedemptionState.choices)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("promotion redemption")
        verbose_name_plural = _("promotion redemptions")
        indexes = [
            models.Index(fields=["promotion", "line", "state"], name="catalog_redemption_idx")
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id}/{self.order_ref}"
