"""{% urgency_notice line %}: the line's urgency warning, in the viewer's
time zone, or nothing when the line needs no attention."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from leb.common import clock
from leb.common.formatting import user_timezone
from leb.reminders.urgency import notice_for

register = template.Library()


@register.inclusion_tag("mylines/_urgency.html", takes_context=True)
def urgency_notice(
    context: Any, line: Any, now: datetime | None = None, compact: bool = False
) -> dict[str, Any]:
    if line is None:
        return {"notice": None}
    notice = notice_for(line, now or clock.now(), user_timezone(context.get("request")))
    return {"notice": notice, "compact": compact, "line_id": line.pk}
