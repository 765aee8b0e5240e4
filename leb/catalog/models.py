from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
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

    def save(self, *args: Any, **kwargs: Any) -> None:
        from . import budgets

        adding = self._state.adding
        update_fields = kwargs.get("update_fields")
        # One transaction: the budget and its slices change together.
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)
            self.__dict__.pop("budget_used_total", None)
            if adding or update_fields is None or "budget" in update_fields:
                # Every way a budget is set or changed keeps its slices summing to it.
                opening = self.__dict__.pop("_opening_budget_used", 0)
                budgets.sync_slices(self, opening_used=opening)

    # The budget is held in slices (PromotionBudgetSlice) so that concurrent
    # top-ups reserve from different rows; its use is the sum over them.
    @property
    def budget_used(self) -> int:
        """Budget reserved by unpaid orders or used by fulfilled ones."""
        known = self.__dict__.get("budget_used_total")
        if known is not None:
            return int(known)
        if self.pk is None:
            return int(self.__dict__.get("_opening_budget_used", 0))
        total = self.budget_slices.aggregate(total=Sum("used"))["total"]
        return int(total or 0)

    @budget_used.setter
    def budget_used(self, value: int) -> None:
        # Only a promotion not yet saved may start with budget already spent
        # (carried over from elsewhere); after that it moves with orders.
        if not self._state.adding:
            raise AttributeError("budget use moves with orders: reserve, use, release")
        self.__dict__["_opening_budget_used"] = int(value)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("budget_used_total", None)
        super().refresh_from_db(*args, **kwargs)


class PromotionBudgetSlice(models.Model):
    """One of the rows a promotion's budget is split into. The allotments sum
    to the budget and each slice's use stays within its allotment, so a
    reservation locks one slice, not the whole budget. When use is above the
    budget (the budget was lowered, or a late payment took its bonus back)
    every allotment is 0 and each reservation takes the exact path."""

    promotion = models.ForeignKey(
        Promotion,
        on_delete=models.CASCADE,
        related_name="budget_slices",
        verbose_name=_("promotion"),
    )
    slot = models.PositiveSmallIntegerField(_("slot"))
    allotment = models.PositiveBigIntegerField(_("allotment (minor units)"), default=0)
    used = models.PositiveBigIntegerField(_("budget reserved or used"), default=0)

    class Meta:
        verbose_name = _("promotion budget slice")
        verbose_name_plural = _("promotion budget slices")
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "slot"], name="catalog_budget_slice_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id}#{self.slot}: {self.used}/{self.allotment}"


def with_budget_used(promotions: QuerySet[Promotion]) -> QuerySet[Promotion]:
    """Each promotion's budget use (the sum over its slices) read in the same
    query, so a list costs no query per promotion."""
    used = (
        PromotionBudgetSlice.objects.filter(promotion=models.OuterRef("pk"))
        .order_by()
        .values("promotion")
        .annotate(total=Sum("used"))
        .values("total")
    )
    return promotions.annotate(
        budget_used_total=Coalesce(models.Subquery(used, output_field=models.BigIntegerField()), 0)
    )


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
    # The budget slice its cost is charged to; null when nothing is charged
    # (no budget, or no cost).
    slot = models.PositiveSmallIntegerField(_("budget slice"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("promotion redemption")
        verbose_name_plural = _("promotion redemptions")
        indexes = [
            models.Index(fields=["promotion", "line", "state"], name="catalog_redemption_idx")
        ]

    def __str__(self) -> str:
        return f"{self.promotion_id}/{self.order_ref}"
