from django.contrib import admin

from leb.common.admin import ReadOnlyAdmin

from .models import CalendarFeed, SentReminder


@admin.register(SentReminder)
class SentReminderAdmin(ReadOnlyAdmin):
    list_display = ("line", "kind", "offset_days", "period", "outcome", "due_at", "created_at")
    list_filter = ("kind", "outcome")
    list_select_related = ("line__phone_number",)
    search_fields = ("line__phone_number__msisdn", "line__iccid")
    raw_id_fields = ("line",)
    date_hierarchy = "created_at"


@admin.register(CalendarFeed)
class CalendarFeedAdmin(ReadOnlyAdmin):
    # The link itself is a secret derived on the fly: staff see only its rotation.
    list_display = ("line", "rotation", "rotated_at", "rotated_by")
    list_select_related = ("line__phone_number", "rotated_by")
    search_fields = ("line__phone_number__msisdn", "line__iccid")
    raw_id_fields = ("line", "rotated_by")
