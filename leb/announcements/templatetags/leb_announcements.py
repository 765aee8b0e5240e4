from __future__ import annotations

from typing import Any

from django import template

from leb.common import clock
from leb.common.formatting import user_timezone

from ..models import Announcement
from ..queries import pinned_announcement

register = template.Library()


@register.simple_tag(takes_context=True)
def pinned_banner(context: Any) -> Announcement | None:
    """`{% pinned_banner as banner %}`: memoised on the request so a page
    that asks twice still reads the cache once. A promotion banner is
    written from the promotion, in the page's language."""
    request = context.get("request")
    if request is not None and hasattr(request, "_leb_pinned_banner"):
        cached: Announcement | None = request._leb_pinned_banner
        return cached
    found = pinned_announcement(clock.now(), user_timezone(request))
    if request is not None:
        request._leb_pinned_banner = found
    return found
