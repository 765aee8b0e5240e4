from __future__ import annotations

from django.contrib import admin

from leb.common.admin import ReadOnlyMixin

from .models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
