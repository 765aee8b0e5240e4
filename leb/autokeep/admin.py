"""Back office view of saved cards and auto-keep: read-only, because only the
subscriber's actions and the auto-keep job change them."""

from __future__ import annotations

from django.contrib import admin

from leb.common.admin import ReadOnlyAdmin

from .models import AutoKeepRule, AutoKeepRun, MethodSetup, SavedPaymentMethod


@admin.register(SavedPaymentMethod)
class SavedPaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "provider", "brand", "last4", "exp_month", "exp_year", "status")
    list_filter = ("provider", "status")
    search_fields = ("=last4", "user__username", "user__email")
    raw_id_fields = ("user",)
    exclude = ("customer_reference", "method_reference")


@admin.register(MethodSetup)
class MethodSetupAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "user", "provider", "status", "created_at", "finished_at")
    list_filter = ("provider", "status")
    search_fields = ("=public_id", "user__username")
    raw_id_fields = ("user", "method")
    exclude = ("provider_reference",)


@admin.register(AutoKeepRule)
class AutoKeepRuleAdmin(ReadOnlyAdmin):
    list_display = ("line", "user", "mode", "plan", "days_before", "paused", "next_check_at")
    list_filter = ("mode", "paused", "paused_reason")
    search_fields = ("line__phone_number__msisdn", "user__username")
    raw_id_fields = ("line", "user", "method", "plan")


@admin.register(AutoKeepRun)
class AutoKeepRunAdmin(ReadOnlyAdmin):
    list_display = ("rule", "period", "attempt", "status", "error_code", "created_at")
    list_filter = ("status", "error_code")
    raw_id_fields = ("rule", "order")
    date_hierarchy = "created_at"
