from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common.admin import FilterErrorsMixin, ReadOnlyMixin

from .actions import MAX_BODY, do_close, do_reply, staff_actor
from .models import Ticket, TicketMessage, TicketStatus


class TicketMessageInline(ReadOnlyMixin, admin.TabularInline):
    model = TicketMessage
    fields = ("created_at", "from_staff", "author", "body")
    readonly_fields = fields
    extra = 0
    can_delete = False


class TicketAdminForm(forms.ModelForm):
    # Not model fields: what staff write here goes through do_reply / do_close.
    reply = forms.CharField(
        label=_("Reply to the customer"),
        required=False,
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=_(
            "Saved as a staff message, marks the ticket answered and emails the customer "
            "in the ticket's language."
        ),
    )
    close = forms.BooleanField(label=_("Close the ticket"), required=False)

    class Meta:
        model = Ticket
        fields = ("category",)


@admin.register(Ticket)
class TicketAdmin(FilterErrorsMixin, admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ("subject", "category", "status", "who", "line", "created_at", "updated_at")
    list_filter = ("status", "category")
    search_fields = (
        "subject",
        "contact_email",
        "contact_phone",
        "user__email",
        "user__username",
        "line__phone_number__msisdn",
        "line__iccid",
    )
    list_select_related = ("user", "line__phone_number")
    date_hierarchy = "created_at"
    ordering = ("-updated_at",)
    inlines = (TicketMessageInline,)
    readonly_fields = (
        "public_id",
        "status",
        "user",
        "contact_email",
        "contact_phone",
        "language",
        "subject",
        "line",
        "order",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "subject",
                    "category",
                    "status",
                    "user",
                    "contact_email",
                    "contact_phone",
                    "language",
                    "line",
                    "order",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (_("Answer"), {"fields": ("reply", "close")}),
    )
    actions = ("close_tickets",)

    @admin.display(description=_("customer"))
    def who(self, obj: Ticket) -> str:
        if obj.user is not None:
            return str(obj.user.email or obj.user.get_username())
        return obj.contact_email or obj.contact_phone

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tickets come from customers; staff answer them.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        reply = form.cleaned_data.get("reply", "").strip()
        with transaction.atomic():
            if "category" in form.changed_data:
                # Only the field staff may edit: status moves through the actions.
                obj.save(update_fields=["category"])
                record(
                    staff_actor(request.user),
                    AuditAction.TICKET_CHANGE,
                    f"ticket:{obj.pk}",
                    {"category": obj.category},
                )
            if reply:
                try:
                    do_reply(obj, body=reply, author=request.user, as_staff=True)
                except ValidationError as exc:
                    messages.error(request, " ".join(exc.messages))
                else:
                    messages.success(request, _("Reply saved; the customer is notified."))
            if form.cleaned_data.get("close"):
                do_close(obj, actor=staff_actor(request.user))

    @admin.action(description=_("Close selected tickets"))
    def close_tickets(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        count = 0
        for ticket in queryset.exclude(status=TicketStatus.CLOSED):
            do_close(ticket, actor=staff_actor(request.user))
            count += 1
        self.message_user(request, _("Tickets closed: %(count)d") % {"count": count})
