from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PersonalToken(models.Model):
    """A bearer token for the API. Only its HMAC is stored: the clear token is
    shown once, when it is created."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    # The public part of the token, so a request finds its row without a scan.
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    token_hash = models.CharField(_("token hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created"), editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("personal API token")
        verbose_name_plural = _("personal API tokens")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["user"], condition=Q(revoked_at__isnull=True), name="api_token_live_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} (leb_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
