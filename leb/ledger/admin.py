from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Account, Transfer, TransferGroup


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ledger is append-only: staff read it, actions write it."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "kind", "currency", "balance", "tracks_balance", "no_negative")
    list_filter = ("kind", "currency")
    search_fields = ("code",)


class TransferInline(admin.TabularInline):
    model = Transfer
    extra = 0
    can_delete = False
    fields = ("debit_account", "credit_account", "amount", "currency", "code", "reverses")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TransferGroup)
class TransferGroupAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "description", "created_at")
    search_fields = ("idempotency_key",)
    date_hierarchy = "created_at"
    inlines = [TransferInline]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("pk", "group", "debit_account", "credit_account", "amount", "currency", "code")
    list_filter = ("currency", "code")
    list_select_related = ("group", "debit_account", "credit_account")
    search_fields = ("group__idempotency_key", "debit_account__code", "credit_account__code")
    raw_id_fields = ("group", "debit_account", "credit_account", "reverses")
