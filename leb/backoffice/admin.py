"""The line pages with their history in plain words: the latest events on the
change page, and the line's whole story (events, orders, payments, messages,
reminders, tickets) on a page of its own. The back office sits above every
app, so it is the one that can tell all of it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from leb.lines.admin import RECENT_EVENTS
from leb.lines.models import Line, LineEvent
from leb.topups import admin as topups_admin

from . import history

admin.site.unregister(Line)


@admin.register(Line)
class LineAdmin(topups_admin.LineAdmin):
    """The line pages, with their history told in sentences."""

    inlines = []

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "history_display")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        first, *rest = super().get_fieldsets(request, obj)
        return (first, (_("History"), {"fields": ("history_display",)}), *rest)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/story/",
                self.admin_site.admin_view(self.story_view),
                name="lines_line_story",
            )
        ]
        return custom + super().get_urls()

    @admin.display(description=_("latest events"))
    def history_display(self, line: Line) -> SafeString:
        events = list(
            LineEvent.objects.filter(line=line).order_by("-happened_at", "-pk")[:RECENT_EVENTS]
        )
        facts = history.orders_of_events(line, events, linked=True)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (entry.when, entry.sentence, entry.actor, entry.channel or "-")
                for entry in history.event_entries(line, events, facts)
            ),
        )
        return format_html(
            '<table class="leb-history"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            '</tr></thead><tbody>{}</tbody></table><p><a href="{}">{}</a></p>',
            _("when"),
            _("what happened"),
            _("by"),
            _("channel"),
            rows,
            reverse("admin:lines_line_story", args=[line.pk]),
            _("The line's whole story: events, top-ups, payments, messages and tickets"),
        )

    def story_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        line = self.get_object(request, unquote(object_id))
        if line is None:
            raise Http404(_("No line has this ID."))
        if not self.has_view_permission(request, line):
            raise PermissionDenied
        story = history.line_story(line, request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": _("The story of %(line)s") % {"line": str(line)},
            "subtitle": None,
            "opts": self.opts,
            "original": line,
            "story": story,
            "line_number": self.number(line),
            "line_status": self.effective_status(line),
            "line_balance": self.balance(line),
            "change_url": reverse("admin:lines_line_change", args=[line.pk]),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "backoffice/line_story.html", context)


__all__: list[Any] = ["LineAdmin"]
