"""The section this app adds to a subscriber's line page (mylines/line.html)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

from leb.common import clock
from leb.lines import lifecycle
from leb.lines.models import LineStatus

from ..forms import KeepPlanForm
from ..queries import default_target, keep_plan

register = template.Library()

# The section's GET parameters are keep-until and keep-allow_grace.
PREFIX = "keep"


def _from_plan_url(line_id: int) -> str:
    """Where "turn this into auto-keep" posts, when auto-keep is installed."""
    try:
        return reverse("autokeep:from_plan", args=[line_id])
    except NoReverseMatch:
        return ""


@register.inclusion_tag("planner/_line_section.html", takes_context=True)
def keep_plan_section(context: dict[str, Any], line: Any) -> dict[str, Any]:
    request = context.get("request")
    now = clock.now()
    status = lifecycle.effective_status(line, now)
    result: dict[str, Any] = {
        "line": line,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "plan": None,
    }
    if status in (LineStatus.INVENTORY, LineStatus.TERMINATED):
        result["hidden"] = True
        return result
    query = getattr(request, "GET", {})
    asked = any(key.startswith(f"{PREFIX}-") for key in query)
    if asked:
        form = KeepPlanForm(query, prefix=PREFIX, now=now)
    else:
        form = KeepPlanForm(
            prefix=PREFIX, now=now, initial={"until": default_target(now), "allow_grace": False}
        )
    result["form"] = form
    if asked and form.is_valid():
        until, allow_grace = form.cleaned_data["until"], form.cleaned_data["allow_grace"]
    elif asked:
        return result
    else:
        until, allow_grace = default_target(now), False
    result["plan"] = keep_plan(line, until, now=now, allow_grace=allow_grace)
    result["fewer_days"] = any(step.adds_fewer_days for step in result["plan"].steps)
    result["from_plan_url"] = _from_plan_url(line.pk)
    return result
