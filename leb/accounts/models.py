from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profile(models.Model):
    """What leb keeps about an account beyond Django's user: the mobile number
    it signs in with (if any), its language and time zone, when its email
    address and mobile number were proven, and the session epoch that "sign
    out everywhere" moves on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="profile",
        verbose_name=_("user"),
    )
    phone = models.CharField(_("mobile number"), max_length=16, null=True, blank=True, unique=True)
    language = models.CharField(_("language"), max_length=10, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    session_epoch = models.PositiveIntegerField(_("session epoch"), default=0)
    # Until set, the address (number) gets no receipts and cannot reset the password.
    email_verified_at = models.DateTimeField(_("email address verified"), null=True, blank=True)
    phone_verified_at = models.DateTimeField(_("mobile number verified"), null=True, blank=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return str(self.user)


class CodePurpose(models.TextChoices):
    VERIFY_PHONE = "verify_phone", _("verify a mobile number")
    RESET_PASSWORD = "reset_password", _("reset a password")


class PhoneCode(models.Model):
    """A 6-digit code texted to a mobile number, to prove the account holds it
    or to reset its password. Only an HMAC of the code is stored. A password
    reset asked for an unknown or unverified number also gets a row (with no
    user and no SMS), so both cases look the same from outside."""

    purpose = models.CharField(_("purpose"), max_length=20, choices=CodePurpose.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="phone_codes",
        verbose_name=_("user"),
    )
    phone = models.CharField(_("mobile number"), max_length=16)
    code_hash = models.CharField(_("code (HMAC)"), max_length=64)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    used_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        verbose_name = _("texted code")
        verbose_name_plural = _("texted codes")

    def __str__(self) -> str:
        return f"{self.purpose} {self.phone} {self.created_at:%Y-%m-%d %H:%M}"
