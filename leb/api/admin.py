"""Personal API tokens in the back office: staff create them (the clear token
is shown once) and revoke them; the hash is never editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common import clock

from . import tokens
from .actions import do_revoke_personal_token
from .models import PersonalToken


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["prefix", "token_hash", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["user", "name"]
        return ["user", "name", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        # A token belongs to one user for life; only its name may change.
        return ["user", *self.readonly_fields]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead, so the history stays

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        now = clock.now()
        prefix, clear, digest = tokens.generate()
        obj.prefix, obj.token_hash, obj.created_at = prefix, digest, now
        super().save_model(request, obj, form, change)
        record(
            f"staff:{request.user.get_username()}",
            AuditAction.API_TOKEN_CREATE,
            f"api_token:{obj.pk}",
            {"user": obj.user_id, "name": obj.name, "prefix": prefix},
            now=now,
        )
        messages.warning(
            request,
            _("Copy this token now; it will not be shown again: %(token)s") % {"token": clear},
        )

    @admin.action(description=gettext_lazy("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        actor = f"staff:{request.user.get_username()}"
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            do_revoke_personal_token(token, actor=actor)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
            % {"count": count},
            messages.SUCCESS,
        )
