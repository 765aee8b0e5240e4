from django.db import models
from django.utils.translation import gettext_lazy as _


class Lockout(models.Model):
    """Failed attempts at a secret (password, PIN, one-time code) for one key:
    an account, a line, a caller number or an IP address. The key is stored as
    an HMAC, so the table holds no phone numbers or addresses in clear."""

    scope = models.CharField(_("scope"), max_length=40)
    key_hash = models.CharField(_("key (HMAC)"), max_length=64)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    last_failure_at = models.DateTimeField(_("last failure"))
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("lockout")
        verbose_name_plural = _("lockouts")
        constraints = [
            models.UniqueConstraint(fields=["scope", "key_hash"], name="security_lockout_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key_hash[:8]}"
