from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    """Hash-chained record of staff actions and money movements: each entry's
    hash covers its content and the previous entry's hash, so an edited or
    deleted row breaks the chain (`leb audit verify`)."""

    at = models.DateTimeField(_("at"), db_index=True)
    actor = models.CharField(_("actor"), max_length=100)
    action = models.CharField(_("action"), max_length=60)
    target = models.CharField(_("target"), max_length=100)
    data = models.JSONField(_("details"), default=dict)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    entry_hash = models.CharField(_("hash"), max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"
