from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BindingChallenge(models.Model):
    """A one-time code sent by SMS to prove the user holds a line's number.

    Only an HMAC of the code is stored. A challenge is also created (with no
    line and no SMS) when the ICCID/number pair is unknown, so both cases look
    the same from outside."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="binding_challenges",
        verbose_name=_("user"),
        db_index=False,
    )
    line = models.ForeignKey(
        "lines.Line",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="binding_challenges",
        verbose_name=_("line"),
    )
    # What the user typed (normalised), kept for lines that do not exist too.
    iccid = models.CharField(_("ICCID"), max_length=20)
    msisdn = models.CharField(_("number (E.164)"), max_length=16)
    code_hash = models.CharField(_("code (HMAC)"), max_length=64)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("line binding code")
        verbose_name_plural = _("line binding codes")
        # Serves the user FK and the count of recent codes per user.
        indexes = [models.Index(fields=["user", "created_at"], name="mylines_challenge_user_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.msisdn} {self.created_at:%Y-%m-%d %H:%M}"
