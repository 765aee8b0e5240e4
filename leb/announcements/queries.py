"""Reads of announcements for pages, the feed and the banner."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet, prefetch_related_objects

from leb.catalog.queries import PromotionView, promotion_views
from leb.common.cache import cache_call

from .models import Announcement, Kind
from .promotions import promotion_text

# The banner is on every page: keep it in the shared cache briefly and drop it
# whenever an announcement or a promotion is saved or deleted (see apps.py).
PINNED_CACHE_KEY = "announcements:pinned:v2"


def pinned_cache_seconds() -> int:
    return int(getattr(settings, "ANNOUNCEMENT_BANNER_CACHE_SECONDS", 60))


def visible_announcements(now: datetime, kind: str = "") -> QuerySet[Announcement]:
    qs = Announcement.objects.visible(now).select_related("promotion")
    if kind in Kind.values:
        qs = qs.filter(kind=kind)
    return qs.order_by("-pinned", "-published_at", "-pk")


def latest_announcements(
    now: datetime, tz: tzinfo | None = None, limit: int = 3
) -> list[Announcement]:
    return attach_promotions(visible_announcements(now)[:limit], now, tz)


def _views_by_promotion(items: Iterable[Announcement], now: datetime) -> dict[int, PromotionView]:
    promotions = [a.promotion for a in items if a.promotion is not None]
    if not promotions:
        return {}
    prefetch_related_objects(promotions, "plans")
    return {view.promotion.pk: view for view in promotion_views(promotions, now)}


def attach_promotions(
    items: Iterable[Announcement],
    now: datetime,
    tz: tzinfo | None = None,
    views: dict[int, PromotionView] | None = None,
) -> list[Announcement]:
    """Give each announcement linked to a promotion that promotion's words, in
    the active language: its title and text then come from the promotion
    (two queries for the whole list)."""
    items = list(items)
    tz = tz or ZoneInfo(settings.TIME_ZONE)
    if views is None:
        views = _views_by_promotion(items, now)
    for item in items:
        view = views.get(item.promotion_id) if item.promotion_id else None
        if view is not None:
            # The state is decided at `now`, even for a view built earlier.
            current = PromotionView(view.promotion, view.plans, now)
            item.promotion_text = promotion_text(current, tz)
    return items


def pinned_announcement(now: datetime, tz: tzinfo | None = None) -> Announcement | None:
    """The newest pinned, visible announcement: a few queries, then cached.

    The cached candidate is re-checked against `now`, so an expiry is honoured
    even while the entry lives. A banner for a promotion that has ended
    (window over, switched off, budget used up) is not shown at all."""
    cached = cache_call(lambda: cache.get(PINNED_CACHE_KEY), None)
    if cached is None:
        found = visible_announcements(now).filter(pinned=True).first()
        cached = (found, _views_by_promotion([found], now)) if found is not None else False
        fresh = cached
        cache_call(lambda: cache.set(PINNED_CACHE_KEY, fresh, pinned_cache_seconds()), None)
    if cached is False:
        return None
    announcement, views = cached
    if not announcement.is_visible(now):
        return None
    if announcement.promotion_id is not None:
        if announcement.promotion_id not in views:
            return None
        attach_promotions([announcement], now, tz, views)
        if announcement.promotion_has_ended:
            return None
    return announcement


def forget_pinned() -> None:
    cache_call(lambda: cache.delete(PINNED_CACHE_KEY), False)
