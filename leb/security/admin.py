from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import Lockout


@admin.register(Lockout)
class LockoutAdmin(admin.ModelAdmin):
    list_display = ("scope", "key_hash", "failures", "last_failure_at", "locked_until")
    list_filter = ("scope",)
    actions = ["unlock"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Lift the selected locks"), permissions=["delete"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[Lockout]) -> None:
        # Support staff lift a lock for a subscriber who has proved who they are.
        queryset.delete()
