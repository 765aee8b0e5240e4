from __future__ import annotations

import json

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from leb.common.admin import FilterErrorsMixin, ReadOnlyMixin

from .models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, FilterErrorsMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "kind",
        "channel",
        "destination",
        "status",
        "reason",
        "attempts",
        "next_attempt_at",
        "sent_at",
    )
    list_filter = ("status", "channel", "kind")
    search_fields = ("destination",)
    list_select_related = ()
    raw_id_fields = ("user", "line")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    # The stored context may hold a code or a link until the row is finished:
    # staff see it with those values hidden.
    exclude = ("context",)
    readonly_fields = ("shown_context",)

    @admin.display(description=_("context"))
    def shown_context(self, obj: Notification) -> str:
        return json.dumps(obj.masked_context(), ensure_ascii=False, indent=2, sort_keys=True)


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "user",
        "email_enabled",
        "sms_enabled",
        "sms_number",
        "webhook_url",
        "quiet_start",
        "quiet_end",
        "updated_at",
    )
    list_filter = ("email_enabled", "sms_enabled")
    search_fields = ("user__email", "sms_number")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
