"""Reads of announcements for pages, the feed and the banner."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from .models import Announcement, Kind

# The banner is on every page: keep it in the shared cache briefly and drop it
# whenever an announcement is saved or deleted (see signals in apps.py).
PINNED_CACHE_KEY = "announcements:pinned:v1"


def pinned_cache_seconds() -> int:
    return int(getattr(settings, "ANNOUNCEMENT_BANNER_CACHE_SECONDS", 60))


def visible_announcements(now: datetime, kind: str = "") -> QuerySet[Announcement]:
    qs = Announcement.objects.visible(now)
    if kind in Kind.values:
        qs = qs.filter(kind=kind)
    return qs.order_by("-pinned", "-published_at", "-pk")


def latest_announcements(now: datetime, limit: int = 3) -> list[Announcement]:
    return list(visible_announcements(now)[:limit])


def pinned_announcement(now: datetime) -> Announcement | None:
    """The newest pinned, visible announcement: one query, then cached.

    The cached candidate is re-checked against `now`, so an expiry is honoured
    even while the entry lives."""
    cached = cache.get(PINNED_CACHE_KEY)
    if cached is None:
        found = visible_announcements(now).filter(pinned=True).first()
        cached = found if found is not None else False
        cache.set(PINNED_CACHE_KEY, cached, pinned_cache_seconds())
    if cached is False or not cached.is_visible(now):
        return None
    return cached


def forget_pinned() -> None:
    cache.delete(PINNED_CACHE_KEY)
