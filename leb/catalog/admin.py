"""Back office for the catalog: plans, free-amount rules and promotions are
edited here through the catalog's actions (each save checked, written and
audited in one transaction); plans are retired and promotions ended by
admin actions; redemptions are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.common.admin import (
    ActionAdmin,
    ActionCheckedForm,
    ReadOnlyAdmin,
    error_text,
    form_fields,
    format_money,
    staff_actor,
    validate_currency,
)

from . import actions
from .models import (
    Channel,
    FreeAmountRule,
    Plan,
    Promotion,
    PromotionRedemption,
    with_budget_used,
)


class ChannelsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=Channel.choices, **kwargs)


class CurrencyFormMixin(ActionCheckedForm):
    def clean_currency(self) -> str:
        return validate_currency(self.cleaned_data.get("currency", ""))


class PlanForm(CurrencyFormMixin):
    channels = ChannelsField(label=_("channels"))

    def check(self, instance: Plan) -> None:
        actions.check_plan(instance)


@admin.register(Plan)
class PlanAdmin(ActionAdmin):
    form = PlanForm
    actions = ["retire_plans"]
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

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        actor = staff_actor(request)
        if change:
            saved = actions.do_update_plan(
                obj, form_fields(form, actions.PLAN_FIELDS, changed_only=True), actor=actor
            )
        else:
            saved = actions.do_create_plan(
                form_fields(form, actions.PLAN_FIELDS, changed_only=False), actor=actor
            )
        obj.pk = saved.pk

    @admin.action(description=_("Take selected plans off sale"), permissions=["change"])
    def retire_plans(self, request: HttpRequest, queryset: QuerySet[Plan]) -> None:
        actor = staff_actor(request)
        retired = deleted = 0
        for plan in queryset.order_by("pk"):
            result = actions.do_retire_plan(plan, actor=actor)
            if result.deleted:
                deleted += 1
            else:
                retired += 1
        if retired:
            self.message_user(
                request,
                ngettext(
                    "%(count)d plan is off sale; its orders keep pointing at it.",
                    "%(count)d plans are off sale; their orders keep pointing at them.",
                    retired,
                )
                % {"count": retired},
                messages.SUCCESS,
            )
        if deleted:
            self.message_user(
                request,
                ngettext(
                    "%(count)d plan that was never used was removed.",
                    "%(count)d plans that were never used were removed.",
                    deleted,
                )
                % {"count": deleted},
                messages.SUCCESS,
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
        try:
            return actions.check_tiers(self.cleaned_data.get("tiers"))
        except actions.CatalogError as exc:
            raise ValidationError(exc.message_dict["tiers"]) from exc

    def check(self, instance: FreeAmountRule) -> None:
        actions.check_free_amount_rule(instance)


@admin.register(FreeAmountRule)
class FreeAmountRuleAdmin(ActionAdmin):
    form = FreeAmountRuleForm
    list_display = ("currency", "min_display", "max_display", "tiers_display", "is_active")
    list_filter = ("is_active",)

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        actor = staff_actor(request)
        if change:
            saved = actions.do_update_free_amount_rule(
                obj, form_fields(form, actions.FREE_AMOUNT_FIELDS, changed_only=True), actor=actor
            )
        else:
            saved = actions.do_create_free_amount_rule(
                form_fields(form, actions.FREE_AMOUNT_FIELDS, changed_only=False), actor=actor
            )
        obj.pk = saved.pk

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

    def check(self, instance: Promotion) -> None:
        plans = self.cleaned_data.get("plans")
        actions.check_promotion(instance, list(plans) if plans is not None else None)


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
class PromotionAdmin(ActionAdmin):
    form = PromotionForm
    actions = ["end_promotions"]
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

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        actor = staff_actor(request)
        plans = form.cleaned_data.get("plans")
        if change:
            saved = actions.do_update_promotion(
                obj,
                form_fields(form, actions.PROMOTION_FIELDS, changed_only=True),
                plans=list(plans) if "plans" in form.changed_data and plans is not None else None,
                actor=actor,
            )
        else:
            saved = actions.do_create_promotion(
                form_fields(form, actions.PROMOTION_FIELDS, changed_only=False),
                plans=list(plans or []),
                actor=actor,
            )
        obj.pk = saved.pk

    def get_queryset(self, request: HttpRequest) -> QuerySet[Promotion]:
        # The budget use is a sum over the budget's slices: one query for the list.
        return with_budget_used(super().get_queryset(request))

    @admin.action(description=_("End selected promotions now"), permissions=["change"])
    def end_promotions(self, request: HttpRequest, queryset: QuerySet[Promotion]) -> None:
        actor = staff_actor(request)
        ended = 0
        for promo in queryset.order_by("pk"):
            try:
                actions.do_end_promotion(promo, actor=actor)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("%(code)s: %(error)s") % {"code": promo.code, "error": error_text(exc)},
                    messages.ERROR,
                )
            else:
                ended += 1
        if ended:
            self.message_user(
                request,
                ngettext(
                    "%(count)d promotion ended; unpaid orders quoted with it keep it.",
                    "%(count)d promotions ended; unpaid orders quoted with them keep them.",
                    ended,
                )
                % {"count": ended},
                messages.SUCCESS,
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
    exclude = ("slot",)
    list_select_related = ("promotion", "line__phone_number")
    search_fields = ("order_ref", "promotion__code", "line__iccid", "line__phone_number__msisdn")
    date_hierarchy = "created_at"

    @admin.display(description=_("cost"), ordering="cost")
    def cost_display(self, redemption: PromotionRedemption) -> str:
        return format_money(redemption.cost, redemption.promotion.currency)
