"""The texts of the messages the accounts app queues, for their templates
(notifications/<kind>/), in the language the message is rendered in."""

from __future__ import annotations

from django import template

from ..verification import code_text

register = template.Library()


@register.simple_tag
def phone_code_text(purpose: str, code: str, number: str, minutes: int) -> str:
    return code_text(purpose, code, number, minutes)
