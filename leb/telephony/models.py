from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CallSession(models.Model):
    """The state of one hotline call, keyed by Twilio's CallSid. Short-lived:
    it expires a while after the caller's last key press and is purged."""

    call_sid = models.CharField(_("call SID"), max_length=64, unique=True)
    caller = models.CharField(_("caller number"), max_length=32, blank=True)
    # True when `line` holds the caller's own number (balance and saved card allowed).
    caller_is_line = models.BooleanField(_("caller is the line"), default=False)
    language = models.CharField(_("language"), max_length=8, blank=True)
    line = models.ForeignKey(
        "lines.Line",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("line"),
    )
    step = models.CharField(_("step"), max_length=20)
    retries = models.PositiveSmallIntegerField(_("retries"), default=0)
    # Number of the prompt the caller is answering; it is part of each action URL.
    seq = models.PositiveIntegerField(_("prompt number"), default=0)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("started"))
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("call session")
        verbose_name_plural = _("call sessions")

    def __str__(self) -> str:
        return self.call_sid
