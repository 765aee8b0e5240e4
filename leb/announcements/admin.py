from __future__ import annotations

from django.contrib import admin
from django.utils import translation
from django.utils.html import format_html, linebreaks
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from leb.common import clock

from .models import Announcement
from .queries import attach_promotions

_LANGUAGES = (
    ("en", "English", "en"),
    ("zh_hans", "简体中文", "zh-Hans"),
    ("zh_hant", "繁體中文", "zh-Hant"),
)


@admin.register(Announcement)
class AnnouncementAdmin(admin.ModelAdmin[Announcement]):
    list_display = (
        "title_en",
        "kind",
        "promotion",
        "pinned",
        "is_published",
        "published_at",
        "expires_at",
    )
    list_filter = ("kind", "pinned", "is_published", "published_at")
    search_fields = ("title_en", "title_zh_hans", "title_zh_hant", "slug")
    prepopulated_fields = {"slug": ("title_en",)}
    date_hierarchy = "published_at"
    readonly_fields = ("preview", "created_at", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "kind",
                    "promotion",
                    "slug",
                    "is_published",
                    "pinned",
                    "published_at",
                    "expires_at",
                )
            },
        ),
        (_("English"), {"fields": ("title_en", "body_en")}),
        (_("Simplified Chinese"), {"fields": ("title_zh_hans", "body_zh_hans")}),
        (_("Traditional Chinese"), {"fields": ("title_zh_hant", "body_zh_hant")}),
        (_("Preview"), {"fields": ("preview", "created_at", "updated_at")}),
    )

    @admin.display(description=_("Preview"))
    def preview(self, obj: Announcement) -> SafeString:
        """Each language as the portal shows it: escaped, with paragraphs, and
        marked when a language falls back to English."""
        if obj.pk is None:
            return format_html("{}", _("Save to see a preview."))
        if obj.promotion_id is not None:
            return self._promotion_preview(obj)
        parts = []
        for suffix, name, lang in _LANGUAGES:
            fallback = not getattr(obj, f"title_{suffix}") or not getattr(obj, f"body_{suffix}")
            parts.append(
                format_html(
                    '<section lang="{}" style="margin-bottom:1em"><h4>{}{}</h4><h3>{}</h3>{}</section>',
                    lang,
                    name,
                    format_html(" ({})", _("falls back to English")) if fallback else "",
                    obj.text_for("title", lang.lower()),
                    linebreaks(obj.text_for("body", lang.lower()), autoescape=True),
                )
            )
        return SafeString("".join(parts))

    def _promotion_preview(self, obj: Announcement) -> SafeString:
        """What each language shows: the words written from the promotion."""
        parts = []
        now = clock.now()
        for _suffix, name, lang in _LANGUAGES:
            with translation.override(lang.lower()):
                (item,) = attach_promotions([obj], now)
                ended = format_html(" ({})", _("ended")) if item.promotion_has_ended else ""
                parts.append(
                    format_html(
                        '<section lang="{}" style="margin-bottom:1em"><h4>{}{}</h4><h3>{}</h3>{}</section>',
                        lang,
                        name,
                        ended,
                        item.title,
                        linebreaks(item.body, autoescape=True),
                    )
                )
        return SafeString("".join(parts))
