"""Audit entries carry only the names of AuditAction."""

from __future__ import annotations

import pytest
from django.contrib import admin

from leb.audit.actions import record
from leb.audit.audited_admin import AuditedAdmin
from leb.audit.models import AuditAction, AuditEntry


@pytest.mark.django_db
def test_an_unknown_action_name_is_refused_and_nothing_is_written() -> None:
    # given an empty log
    # when something records a name that is not in the list
    with pytest.raises(ValueError):
        record("staff:someone", "plan.delete_everything", "plan:1", {})
    # then the log is still empty
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_known_name_is_stored_as_its_value() -> None:
    entry = record("staff:someone", AuditAction.PLAN_CHANGE, "plan:1", {"fields": ["price"]})
    entry.refresh_from_db()
    assert entry.action == "plan.change"
    assert entry.get_action_display() == "Plan changed"


def test_every_audited_admin_has_its_add_and_change_names() -> None:
    # The audited admin records "<model>.add" / "<model>.change": each model
    # it edits must have both names, or saving in the back office would fail.
    audited = [
        model._meta.model_name
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, AuditedAdmin)
    ]
    assert "agent" in audited
    for name in audited:
        AuditAction(f"{name}.add")
        AuditAction(f"{name}.change")
