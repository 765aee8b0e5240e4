"""The back office never writes a catalog or lines row itself: every page of
those apps that can add, change or delete hands the form to a `do_*` action
(which checks, writes and audits in one transaction), and every admin action
on their lists calls one. Read from the code, so a new page that saves the
Django way fails here before it reaches staff."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from leb.catalog.models import Plan

APPS = ("catalog", "lines")
# What writing a row directly looks like in a method body.
DIRECT_WRITES = {"save", "delete", "update", "bulk_create", "bulk_update", "save_m2m", "create"}


def _tree(function: Callable[..., Any]) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def _called_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.append(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.append(node.func.attr)
    return names


def _calls_super(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
        for node in ast.walk(tree)
    )


def problems_of(model_admin: admin.ModelAdmin, request: Any) -> list[str]:
    """What in this admin writes a row other than through an action."""
    found: list[str] = []
    name = type(model_admin).__name__
    hooks: list[str] = []
    if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
        hooks += ["save_model", "save_related"]
    if model_admin.has_delete_permission(request):
        hooks += ["delete_model", "delete_queryset"]
    for hook in hooks:
        method = getattr(type(model_admin), hook)
        if not method.__module__.startswith("leb."):
            found.append(f"{name}.{hook} is Django's own: it writes the row itself")
            continue
        tree = _tree(method)
        called = _called_names(tree)
        if _calls_super(tree):
            found.append(f"{name}.{hook} calls Django's {hook}")
        direct = sorted(set(called) & DIRECT_WRITES)
        if direct:
            found.append(f"{name}.{hook} writes directly: {', '.join(direct)}")
        if hook == "save_model" and not any(c.startswith("do_") for c in called):
            found.append(f"{name}.save_model calls no do_* action")
    for action_name, entry in model_admin.get_actions(request).items():
        tree = _tree(entry[0])  # type: ignore[index]
        called = _called_names(tree)
        direct = sorted(set(called) & DIRECT_WRITES)
        if direct:
            found.append(f"{name} action {action_name} writes directly: {', '.join(direct)}")
        if not any(c.startswith("do_") for c in called):
            found.append(f"{name} action {action_name} calls no do_* action")
    return found


@pytest.fixture
def superuser_request(db: Any) -> Any:
    request = RequestFactory().get("/ops/")
    request.user = get_user_model().objects.create_superuser("inspector", password="x-unused-9")
    return request


def test_no_catalog_or_lines_page_writes_a_row_itself(superuser_request: Any) -> None:
    # given every registered admin of the catalog and lines apps
    admins = [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS
    ]
    assert len(admins) >= 8
    # when each is read
    found = [
        problem for model_admin in admins for problem in problems_of(model_admin, superuser_request)
    ]
    # then each write goes through an action
    assert found == []


def test_every_editable_catalog_and_lines_page_overrides_save_model(
    superuser_request: Any,
) -> None:
    editable = [
        type(model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS
        and (
            model_admin.has_add_permission(superuser_request)
            or model_admin.has_change_permission(superuser_request)
        )
    ]
    names = {cls.__name__ for cls in editable}
    assert {
        "PlanAdmin",
        "FreeAmountRuleAdmin",
        "PromotionAdmin",
        "NumberPolicyAdmin",
        "PhoneNumberAdmin",
    } <= names
    for cls in editable:
        assert cls.save_model.__module__.startswith("leb."), cls.__name__
        assert cls.save_model is not admin.ModelAdmin.save_model


def test_the_inspection_catches_a_page_that_saves_the_django_way(
    superuser_request: Any,
) -> None:
    # given a page that saves through Django and an admin action that updates rows
    class CarelessPlanAdmin(admin.ModelAdmin):
        actions = ["deactivate"]

        @admin.action(description="deactivate")
        def deactivate(self, request: Any, queryset: Any) -> None:
            queryset.update(is_active=False)

    class SuperSavingPlanAdmin(admin.ModelAdmin):
        def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
            super().save_model(request, obj, form, change)

    site = admin.AdminSite(name="inspection")
    # when they are inspected
    careless = problems_of(CarelessPlanAdmin(Plan, site), superuser_request)
    super_saving = problems_of(SuperSavingPlanAdmin(Plan, site), superuser_request)
    # then each direct write is named
    assert "CarelessPlanAdmin.save_model is Django's own: it writes the row itself" in careless
    assert "CarelessPlanAdmin action deactivate writes directly: update" in careless
    assert "CarelessPlanAdmin.delete_model is Django's own: it writes the row itself" in careless
    assert "SuperSavingPlanAdmin.save_model calls Django's save_model" in super_saving
    assert "SuperSavingPlanAdmin.save_model calls no do_* action" in super_saving
