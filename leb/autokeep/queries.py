"""Reads of the auto-keep app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from leb.common import clock
from leb.lines.models import Line

from .models import AutoKeepRule, AutoKeepRun, MethodStatus, SavedPaymentMethod


def usable_methods(user: Any, now: datetime | None = None) -> QuerySet[SavedPaymentMethod]:
    """A user's active, unexpired saved methods, newest first."""
    today = timezone.localdate(now or clock.now())
    return (
        SavedPaymentMethod.objects.filter(user=user, status=MethodStatus.ACTIVE)
        .filter(Q(exp_year__gt=today.year) | Q(exp_year=today.year, exp_month__gte=today.month))
        .order_by("-created_at", "-id")
    )


def is_usable(method: SavedPaymentMethod, now: datetime | None = None) -> bool:
    today = timezone.localdate(now or clock.now())
    return method.is_active and method.expires_on >= today


def saved_method_for_line(line: Line, now: datetime | None = None) -> SavedPaymentMethod | None:
    """The usable saved method of the line's owner: the one its auto-keep rule
    uses if that is usable, else the newest usable one. None if the line has
    no owner, nothing is saved, or every saved card has expired."""
    if line.owner_id is None:
        return None
    rule = (
        AutoKeepRule.objects.filter(line=line, user_id=line.owner_id or 0)
        .select_related("method")
        .first()
    )
    if rule is not None and is_usable(rule.method, now):
        return rule.method
    return usable_methods(line.owner_id, now).first()


def rule_for_line(line: Line) -> AutoKeepRule | None:
    return (
        AutoKeepRule.objects.filter(line=line, user_id=line.owner_id or 0)
        .select_related("method", "plan")
        .first()
    )


def last_runs(rule: AutoKeepRule, limit: int = 5) -> QuerySet[AutoKeepRun]:
    return rule.runs.select_related("order").order_by("-created_at", "-id")[:limit]
