"""The text of the message this app queues, for its template
(notifications/line_binding_code/sms.txt), in the language it is rendered in."""

from __future__ import annotations

from django import template

from ..binding import code_text

register = template.Library()


@register.simple_tag
def binding_code_text(code: str, number: str, minutes: int) -> str:
    return code_text(code, number, minutes)
