"""Operator news: promotions, fee changes and maintenance windows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from .promotions import PromotionText


class Kind(models.TextChoices):
    PROMOTION = "promotion", _("Promotion")
    FEE_CHANGE = "fee_change", _("Fee change")
    MAINTENANCE = "maintenance", _("Maintenance")


def language_suffix(language: str | None = None) -> str:
    """Field suffix for a Django language code: zh-hans -> zh_hans, else en."""
    language = (language or translation.get_language() or "en").lower()
    if language.startswith("zh-hant") or language in ("zh-hk", "zh-tw", "zh-mo"):
        return "zh_hant"
    if language.startswith("zh"):
        return "zh_hans"
    return "en"


class AnnouncementQuerySet(models.QuerySet["Announcement"]):
    def visible(self, now: datetime) -> QuerySet[Announcement]:
        """Published, already out, and not expired at `now`."""
        return self.filter(is_published=True, published_at__lte=now).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class Announcement(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    # A promotion announcement linked to its promotion takes its title and
    # text from the promotion's own fields, never from the free text below.
    promotion = models.ForeignKey(
        "catalog.Promotion",
        null=True,
        blank=True,
        # Never left without its words: a promotion with announcements stays.
        on_delete=models.PROTECT,
        related_name="announcements",
        verbose_name=_("promotion"),
        help_text=_(
            "The title and text are then written from the promotion itself, in every language."
        ),
    )
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    title_zh_hans = models.CharField(_("title (Simplified Chinese)"), max_length=200, blank=True)
    title_zh_hant = models.CharField(_("title (Traditional Chinese)"), max_length=200, blank=True)
    body_en = models.TextField(
        _("body (English)"),
        blank=True,
        help_text=_("Plain text; blank lines separate paragraphs."),
    )
    body_zh_hans = models.TextField(_("body (Simplified Chinese)"), blank=True)
    body_zh_hant = models.TextField(_("body (Traditional Chinese)"), blank=True)
    published_at = models.DateTimeField(_("published at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    pinned = models.BooleanField(
        _("pinned"), default=False, help_text=_("Shown as a banner on every portal page.")
    )
    is_published = models.BooleanField(_("published"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = AnnouncementQuerySet.as_manager()

    class Meta:
        ordering = ["-pinned", "-published_at", "-pk"]
        verbose_name = _("announcement")
        verbose_name_plural = _("announcements")
        indexes = [
            models.Index(
                fields=["is_published", "pinned", "published_at"], name="announce_visible_idx"
            )
        ]

    def __str__(self) -> str:
        return self.title_en or f"{self.get_kind_display()} {self.slug}"

    def get_absolute_url(self) -> str:
        return reverse("announcements:detail", kwargs={"slug": self.slug})

    def clean(self) -> None:
        if self.promotion_id is None:
            errors = {}
            if not self.title_en.strip():
                errors["title_en"] = _("Enter a title, or link the announcement to a promotion.")
            if not self.body_en.strip():
                errors["body_en"] = _("Enter the text, or link the announcement to a promotion.")
            if errors:
                raise ValidationError(errors)

    def text_for(self, field: str, language: str | None = None) -> str:
        """`title` or `body` in the language, falling back to English when empty."""
        value = getattr(self, f"{field}_{language_suffix(language)}", "")
        return str(value or getattr(self, f"{field}_en"))

    # Set by queries.attach_promotions: the linked promotion's words for this request.
    promotion_text: PromotionText | None = None

    @property
    def title(self) -> str:
        if self.promotion_text is not None:
            return self.promotion_text.headline
        return self.text_for("title")

    @property
    def body(self) -> str:
        if self.promotion_text is not None:
            return "\n\n".join(self.promotion_text.details)
        return self.text_for("body")

    @property
    def promotion_has_ended(self) -> bool:
        return self.promotion_text is not None and self.promotion_text.has_ended

    def is_visible(self, now: datetime) -> bool:
        return (
            self.is_published
            and self.published_at <= now
            and (self.expires_at is None or self.expires_at > now)
        )
