"""The section this app adds to a subscriber's line page (mylines/line.html),
and {% keep_by %} for the reminder texts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import template
from django.conf import settings

from leb.common.formatting import Format, format_local_date, user_timezone

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


@register.simple_tag(takes_context=True)
def keep_by(context: dict[str, Any], lost_at: Any, fmt: Format = "long") -> str:
    """The last local day a top-up keeps the number, from the moment it is
    lost: the day before, as lifecycle.last_keep_day says on the line page."""
    if not isinstance(lost_at, datetime):
        return ""
    tz = user_timezone(context.get("request"))
    day = lost_at.astimezone(tz).date() - timedelta(days=1)
    return format_local_date(day, tz, fmt=fmt)
