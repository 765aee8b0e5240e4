"""The section this app adds to a subscriber's line page (mylines/line.html)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("reminders/_line_section.html", takes_context=True)
def calendar_section(context: dict[str, Any], line: Any) -> dict[str, Any]:
    return {"line": line, "request": context.get("request")}
