"""Announcement pages and the Atom feed (thin: reads come from queries)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import linebreaks
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from leb.common import clock
from leb.common.formatting import user_timezone

from .models import Announcement, Kind
from .queries import attach_promotions, visible_announcements

PAGE_SIZE = 20


def announcement_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    if kind not in Kind.values:
        kind = ""
    now = clock.now()
    page = Paginator(visible_announcements(now, kind), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = attach_promotions(page.object_list, now, user_timezone(request))
    return render(
        request,
        "announcements/list.html",
        {"page": page, "kind": kind, "kinds": Kind.choices},
    )


def announcement_detail(request: HttpRequest, slug: str) -> HttpResponse:
    now = clock.now()
    announcement = visible_announcements(now).filter(slug=slug).first()
    if announcement is None:
        raise Http404(_("No such announcement."))
    attach_promotions([announcement], now, user_timezone(request))
    return render(request, "announcements/detail.html", {"announcement": announcement})


class AnnouncementFeed(Feed):
    """Atom feed in the request's language (LocaleMiddleware has activated it)."""

    feed_type = Atom1Feed
    title = gettext_lazy("leb announcements")
    subtitle = gettext_lazy("Promotions, fee changes and maintenance from leb.")

    def link(self) -> str:
        return reverse("announcements:list")

    def items(self) -> list[Announcement]:
        now = clock.now()
        return attach_promotions(visible_announcements(now)[:PAGE_SIZE], now)

    def item_title(self, item: Announcement) -> str:
        return item.title

    def item_description(self, item: Announcement) -> str:
        # Escaped plain text turned into paragraphs, like the detail page.
        return linebreaks(item.body, autoescape=True)

    def item_pubdate(self, item: Announcement) -> datetime:
        return item.published_at

    def item_updateddate(self, item: Announcement) -> datetime:
        return item.updated_at

    def item_categories(self, item: Announcement) -> list[str]:
        return [str(item.get_kind_display())]


announcement_feed = AnnouncementFeed()
