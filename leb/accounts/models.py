from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """What leb keeps about an account beyond Django's user: the mobile number
    it signs in with (if any), its language and time zone, and the session
    epoch that "sign out everywhere" moves on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    phone = models.CharField(_("mobile number"), max_length=16, null=True, blank=True, unique=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    session_epoch = models.PositiveIntegerField(_("session epoch"), default=0)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)
