"""Back office for the catalog: plans, free-amount rules and promotions are
edited here (every save is audited); redemptions are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from leb.audit.audited_admin import AuditedAdmin
from leb.common.admin import ReadOnlyAdmin, format_money, validate_currency

from .models import Channel, FreeAmountRule, Plan, Promotion, PromotionRedemption


class ChannelsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Channel.choices, **kwargs)


class CurrencyFormMixin(forms.ModelForm):
    def clean_currency(self) -> str:
        return validate_currency(self.cleaned_data.get("currency", ""))


class PlanForm(CurrencyFormMixin):
    channels = ChannelsField(label=_("channels"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("active_from"), cleaned.get("active_until")
        if start and end and end <= start:
            raise ValidationError(_("The sale must end after it starts."))
        return cleaned


@admin.register(Plan)
class PlanAdmin(AuditedAdmin):
    form = PlanForm
    list_display = (
        "code",
        "name_en",
        "currency",
        "price_display",
        "credit_display",
        "validity_days",
        "is_active",
        "sort_order",
    )
    list_filter = ("currency", "is_active")
    search_fields = ("code", "name_en", "name_zh_hans", "name_zh_hant")
    fieldsets = (
        (None, {"fields": ("code", "name_en", "name_zh_hans", "name_zh_hant")}),
        (
            _("What it costs and gives"),
            {"fields": ("currency", "price", "credit", "validity_days")},
        ),
        (
            _("Where and when it is sold"),
            {"fields": ("channels", "is_active", "active_from", "active_until", "sort_order")},
        ),
    )

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, plan: Plan) -> str:
        return format_money(plan.price, plan.currency)

    @admin.display(description=_("credit"), ordering="credit")
    def credit_display(self, plan: Plan) -> str:
        return format_money(plan.credit, plan.currency)


class FreeAmountRuleForm(CurrencyFormMixin):
    channels = ChannelsField(label=_("channels"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "tiers" in self.fields:
            self.fields["tiers"].help_text = _(
                "[[minimum amount, validity days], ...] in minor units, e.g. [[1000, 30], [5000, 180]]"
            )

    def clean_tiers(self) -> list[list[int]]:
        tiers = self.cleaned_data.get("tiers")
        problem = ValidationError(
            _("Enter a list of [minimum amount, validity days] pairs of whole numbers.")
        )
        if not isinstance(tiers, list):
            raise problem
        for tier in tiers:
            if not (
                isinstance(tier, list)
                and len(tier) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in tier)
            ):
                raise problem
        return sorted(tiers)


@admin.register(FreeAmountRule)
class FreeAmountRuleAdmin(AuditedAdmin):
    form = FreeAmountRuleForm
    list_display = ("currency", "min_display", "max_display", "tiers_display", "is_active")
    list_filter = ("is_active",)

    @admin.display(description=_("minimum"), ordering="min_amount")
    def min_display(self, rule: FreeAmountRule) -> str:
        return format_money(rule.min_amount, rule.currency)

    @admin.display(description=_("maximum"), ordering="max_amount")
    def max_display(self, rule: FreeAmountRule) -> str:
        return format_money(rule.max_amount, rule.currency)

    @admin.display(description=_("validity tiers"))
    def tiers_display(self, rule: FreeAmountRule) -> str:
        return ", ".join(
            str(
                _("from %(amount)s: %(days)d days")
                % {"amount": format_money(low, rule.currency), "days": days}
            )
            for low, days in sorted(rule.tiers)
        )


class PromotionForm(CurrencyFormMixin):
    channels = ChannelsField(label=_("channels (none ticked: all)"), required=False)

    def clean_promo_code(self) -> str:
        return (self.cleaned_data.get("promo_code") or "").strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        currency, plans = cleaned.get("currency"), cleaned.get("plans")
        if currency and plans:
            wrong = [plan.code for plan in plans if plan.currency != currency]
            if wrong:
                self.add_error(
                    "plans",
                    _("These plans are not in %(currency)s: %(plans)s")
                    % {"currency": currency, "plans": ", ".join(wrong)},
                )
        return cleaned


class PromotionKindFilter(admin.SimpleListFilter):
    title = _("how it applies")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("auto", _("Automatically")), ("code", _("With a promo code"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "auto":
            return queryset.filter(promo_code="")
        if self.value() == "code":
            return queryset.exclude(promo_code="")
        return queryset


@admin.register(Promotion)
class PromotionAdmin(AuditedAdmin):
    form = PromotionForm
    list_display = (
        "code",
        "name_en",
        "promo_code_display",
        "currency",
        "benefit",
        "starts_at",
        "ends_at",
        "budget_display",
        "per_line_limit",
        "is_active",
    )
    list_filter = ("is_active", "currency", PromotionKindFilter)
    search_fields = ("code", "promo_code", "name_en", "name_zh_hans", "name_zh_hant")
    filter_horizontal = ("plans",)
    # Budget use moves with orders (reserve, use, release), never by hand.
    readonly_fields = ("budget_used_display",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code",
                    "promo_code",
                    "name_en",
                    "name_zh_hans",
                    "name_zh_hant",
                    "is_active",
                )
            },
        ),
        (
            _("What it gives"),
            {
                "fields": (
                    "currency",
                    "bonus_credit_percent",
                    "bonus_credit_fixed",
                    "bonus_days",
                    "discount_percent",
                    "discount_fixed",
                )
            },
        ),
        (
            _("Where and when"),
            {"fields": ("starts_at", "ends_at", "channels", "plans", "applies_to_free_amount")},
        ),
        (_("Limits"), {"fields": ("per_line_limit", "budget", "budget_used_display")}),
    )

    @admin.display(description=_("promo code"), ordering="promo_code")
    def promo_code_display(self, promo: Promotion) -> str:
        return promo.promo_code or str(_("(automatic)"))

    @admin.display(description=_("gives"))
    def benefit(self, promo: Promotion) -> str:
        parts = []
        if promo.bonus_credit_percent:
            parts.append(str(_("+%(percent)d%% credit") % {"percent": promo.bonus_credit_percent}))
        if promo.bonus_credit_fixed:
            parts.append(
                str(
                    _("+%(amount)s credit")
                    % {"amount": format_money(promo.bonus_credit_fixed, promo.currency)}
                )
            )
        if promo.bonus_days:
            parts.append(str(_("+%(days)d days") % {"days": promo.bonus_days}))
        if promo.discount_percent:
            parts.append(str(_("%(percent)d%% off") % {"percent": promo.discount_percent}))
        if promo.discount_fixed:
            parts.append(
                str(
                    _("%(amount)s off")
                    % {"amount": format_money(promo.discount_fixed, promo.currency)}
                )
            )
        return ", ".join(parts) or "-"

    @admin.display(description=_("budget used"))
    def budget_display(self, promo: Promotion) -> str:
        used = format_money(promo.budget_used, promo.currency)
        if promo.budget is None:
            return str(_("%(used)s (no budget)") % {"used": used})
        return f"{used} / {format_money(promo.budget, promo.currency)}"

    @admin.display(description=_("budget reserved or used"))
    def budget_used_display(self, promo: Promotion) -> str:
        return format_money(promo.budget_used, promo.currency) if promo.pk else "-"


@admin.register(PromotionRedemption)
class PromotionRedemptionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "promotion", "line", "order_ref", "cost_display", "state")
    list_filter = ("state", "promotion")
    list_select_related = ("promotion", "line__phone_number")
    search_fields = ("order_ref", "promotion__code", "line__iccid", "line__phone_number__msisdn")
    date_hierarchy = "created_at"

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, redemption: PromotionRedemption) -> str:
        return format_money(redemption.cost, redemption.promotion.currency)
