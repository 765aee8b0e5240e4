"""The model admin every audited back-office page builds on."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest

from leb.common.admin import staff_actor

from .actions import record


class AuditedAdmin(admin.ModelAdmin):
    """Catalog and policy edits change what subscribers pay and keep: every
    save goes to the hash-chained audit log in the same transaction."""

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self._audit(request, obj, "change" if change else "add", list(form.changed_data))

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        with transaction.atomic():
            super().save_related(request, form, formsets, change)

    def _audit(self, request: HttpRequest, obj: Model, verb: str, fields: list[str]) -> None:
        name = obj._meta.model_name
        record(staff_actor(request), f"{name}.{verb}", f"{name}:{obj.pk}", {"fields": fields})

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Orders and lines keep pointing at these rows: retire them instead.
        return False
