"""The section this app adds to a subscriber's line page (mylines/line.html),
and the reason texts used by its pages and messages."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext_lazy as _

from leb.common import clock

register = template.Library()


@register.inclusion_tag("autokeep/_line_section.html", takes_context=True)
def autokeep_section(context: dict[str, Any], line: Any) -> dict[str, Any]:
    from ..models import RunStatus
    from ..queries import is_usable, last_runs, rule_for_line

    request = context.get("request")
    user = getattr(request, "user", None)
    data: dict[str, Any] = {"line": line, "request": request, "rule": None}
    if line is None or user is None or not user.is_authenticated or line.owner_id != user.pk:
        data["hidden"] = True
        return data
    rule = rule_for_line(line)
    data["rule"] = rule
    if rule is not None:
        now = clock.now()
        runs = list(last_runs(rule, 1))
        last = runs[0] if runs else None
        data["last_run"] = last
        data["last_failed"] = last is not None and last.status == RunStatus.FAILED
        data["card_usable"] = is_usable(rule.method, now)
        data["next_check_at"] = rule.next_check_at if not rule.paused else None
    return data


@register.simple_tag
def autokeep_reason(code: str) -> str:
    from ..actions import reason_text

    return reason_text(code or "declined")


@register.simple_tag
def autokeep_days_note(run: Any) -> str:
    """For a run that topped up fewer days than its plan (the validity cap or
    the reset rule took some): "Added 12 days, not 180." Empty otherwise."""
    from django.utils.translation import ngettext

    from leb.catalog.quotes import Quote

    order = getattr(run, "order", None)
    if order is None or order.days_added is None:
        return ""
    try:
        frozen = Quote.from_dict(order.quote)
    except (KeyError, TypeError, ValueError):
        return ""
    added, days = int(order.days_added), frozen.validity_days
    if added >= days:
        return ""
    if added == 0:
        return str(_("Added no days, only credit."))
    return ngettext(
        "Added %(added)d day, not %(days)d.", "Added %(added)d days, not %(days)d.", added
    ) % {"added": added, "days": days}
