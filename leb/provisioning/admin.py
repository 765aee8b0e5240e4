"""Back office for eSIM profiles: the install state, the history the SM-DP+
reported, every ES2+ call, and staff actions that call the same actions the
subscriber's page does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.common.admin import ReadOnlyAdmin, ReadOnlyMixin, error_text, staff_actor

from .actions import (
    do_cancel_order,
    do_order_profile,
    do_redownload_profile,
    do_release_profile,
)
from .models import Es2Call, Profile, ProfileEvent


class ProfileEventInline(ReadOnlyMixin, admin.TabularInline):
    model = ProfileEvent
    extra = 0
    fields = ("happened_at", "kind", "from_state", "to_state", "applied", "eid", "actor", "data")
    readonly_fields = fields
    ordering = ("-happened_at", "-pk")
    verbose_name_plural = _("history")


class Es2CallInline(ReadOnlyMixin, admin.TabularInline):
    model = Es2Call
    extra = 0
    fields = (
        "created_at",
        "function",
        "function_call_id",
        "status",
        "subject_code",
        "reason_code",
        "message",
        "attempts",
        "actor",
    )
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    verbose_name_plural = _("ES2+ calls")


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = ("iccid", "line_link", "state", "eid", "state_changed_at")
    list_filter = ("state",)
    search_fields = ("iccid", "eid", "matching_id", "line__phone_number__msisdn")
    list_select_related = ("line__phone_number",)
    fields = (
        "iccid",
        "line_link",
        "state",
        "eid",
        "matching_id",
        "smdp_address",
        "activation_code",
        "confirmation_code_required",
        "last_notification_at",
        "state_changed_at",
        "created_at",
    )
    readonly_fields = fields
    inlines = (ProfileEventInline, Es2CallInline)
    actions = ["order_profiles", "release_profiles", "cancel_orders", "redownload_profiles"]

    @admin.display(description=_("line"))
    def line_link(self, profile: Profile) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:lines_line_change", args=[profile.line_id]),
            str(profile.line),
        )

    def has_provision_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("provisioning.change_profile"))

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Profile],
        act: Callable[[Profile, str], Any],
        done: Callable[[int], str],
    ) -> None:
        actor = staff_actor(request)
        count = 0
        for profile in queryset.select_related("line__policy").order_by("pk"):
            try:
                act(profile, actor)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("%(iccid)s: %(error)s") % {"iccid": profile.iccid, "error": error_text(exc)},
                    messages.ERROR,
                )
            else:
                count += 1
        if count:
            self.message_user(request, done(count), messages.SUCCESS)

    @admin.action(
        description=_("Order and confirm the eSIM (downloadOrder, confirmOrder)"),
        permissions=["provision"],
    )
    def order_profiles(self, request: HttpRequest, queryset: QuerySet[Profile]) -> None:
        self._each(
            request,
            queryset,
            lambda profile, actor: do_order_profile(profile.line, actor=actor),
            lambda n: (
                ngettext("Ordered %(count)d eSIM.", "Ordered %(count)d eSIMs.", n) % {"count": n}
            ),
        )

    @admin.action(
        description=_("Release held eSIMs for download (releaseProfile)"),
        permissions=["provision"],
    )
    def release_profiles(self, request: HttpRequest, queryset: QuerySet[Profile]) -> None:
        self._each(
            request,
            queryset,
            lambda profile, actor: do_release_profile(profile, actor=actor),
            lambda n: (
                ngettext("Released %(count)d eSIM.", "Released %(count)d eSIMs.", n) % {"count": n}
            ),
        )

    @admin.action(
        description=_("Cancel the order; the code stops working (cancelOrder)"),
        permissions=["provision"],
    )
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Profile]) -> None:
        self._each(
            request,
            queryset,
            lambda profile, actor: do_cancel_order(profile, actor=actor, reason="back office"),
            lambda n: (
                ngettext("Cancelled %(count)d eSIM order.", "Cancelled %(count)d eSIM orders.", n)
                % {"count": n}
            ),
        )

    @admin.action(
        description=_("Download a deleted eSIM again (phone reset)"), permissions=["provision"]
    )
    def redownload_profiles(self, request: HttpRequest, queryset: QuerySet[Profile]) -> None:
        self._each(
            request,
            queryset,
            lambda profile, actor: do_redownload_profile(profile, actor=actor),
            lambda n: (
                ngettext("Ordered %(count)d eSIM again.", "Ordered %(count)d eSIMs again.", n)
                % {"count": n}
            ),
        )


@admin.register(Es2Call)
class Es2CallAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "function", "profile", "status", "subject_code", "reason_code")
    list_filter = ("function", "status")
    search_fields = ("function_call_id", "profile__iccid")
