"""The section this app adds to a subscriber's line page (mylines/line.html)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from ..calendar import feed_path

register = template.Library()


@register.inclusion_tag("reminders/_line_section.html", takes_context=True)
def calendar_section(context: dict[str, Any], line: Any) -> dict[str, Any]:
    request = context.get("request")
    path = feed_path(line)
    feed_url = webcal_url = ""
    if path is not None:
        feed_url = settings.SITE_URL.rstrip("/") + path
        webcal_url = "webcal://" + feed_url.split("://", 1)[-1]
    return {
        "line": line,
        "request": request,
        "csrf_token": context.get("csrf_token"),
        "feed_url": feed_url,
        "webcal_url": webcal_url,
    }
