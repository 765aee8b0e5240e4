"""Back office view of payments: read-only, because only the payment actions
and provider events change them."""

from __future__ import annotations

from django.contrib import admin

from leb.common.admin import ReadOnlyAdmin

from .models import PaymentAttempt, ProviderEvent, Refund, SandboxVaultedCard


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "order", "provider", "status", "amount", "currency", "created_at")
    list_filter = ("provider", "status", "currency")
    search_fields = ("=public_id", "=provider_reference", "=order__public_id")
    raw_id_fields = ("order",)
    date_hierarchy = "created_at"
    exclude = ("provider_data",)


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    list_display = ("event_id", "provider", "type", "outcome", "received_at", "processed_at")
    list_filter = ("provider", "type", "outcome")
    search_fields = ("=event_id", "=attempt__public_id")
    raw_id_fields = ("attempt",)


@admin.register(SandboxVaultedCard)
class SandboxVaultedCardAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer_reference", "brand", "last4", "behaviour", "created_at")
    list_filter = ("behaviour",)
    search_fields = ("=public_id", "=customer_reference")
    exclude = ("return_url", "cancel_url")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "attempt", "amount", "currency", "status", "tries", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("=public_id", "=provider_reference", "=attempt__public_id")
    raw_id_fields = ("attempt",)
    date_hierarchy = "created_at"
