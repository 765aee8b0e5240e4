from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from leb.common.admin import ReadOnlyAdmin, ReadOnlyMixin

from .models import Account, Transfer, TransferGroup


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "kind", "currency", "balance", "tracks_balance", "no_negative")
    list_filter = ("kind", "currency")
    search_fields = ("code",)


class TransferInline(ReadOnlyMixin, admin.TabularInline):
    model = Transfer
    extra = 0
    can_delete = False
    fields = ("debit_account", "credit_account", "amount", "currency", "code", "reverses")
    readonly_fields = fields


@admin.register(TransferGroup)
class TransferGroupAdmin(ReadOnlyAdmin):
    list_display = ("idempotency_key", "description", "created_at")
    search_fields = ("idempotency_key",)
    date_hierarchy = "created_at"
    inlines = [TransferInline]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = (
        "transfer_id",
        "group",
        "debit_account",
        "credit_account",
        "amount",
        "currency",
        "code",
    )
    list_filter = ("currency", "code", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("group", "debit_account", "credit_account")
    search_fields = ("group__idempotency_key", "debit_account__code", "credit_account__code")
    raw_id_fields = ("group", "debit_account", "credit_account", "reverses")

    @admin.display(description=_("transfer ID"), ordering="pk")
    def transfer_id(self, transfer: Transfer) -> int:
        return transfer.pk
