from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from leb.lines.identifiers import normalize_msisdn

from .models import Profile


def parse_identifier(value: str) -> tuple[str, str]:
    """(email, phone): exactly one is set. Raises a translated ValidationError."""
    value = (value or "").strip()
    if "@" in value:
        validate_email(value)
        return value.lower(), ""
    try:
        return "", normalize_msisdn(value)
    except ValidationError as exc:
        raise ValidationError(
            _("Enter an email address or a mobile number."), code="identifier_invalid"
        ) from exc


class RegistrationForm(forms.Form):
    identifier = forms.CharField(
        label=_("Email or mobile number"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_identifier(self) -> tuple[str, str]:
        email, phone = parse_identifier(self.cleaned_data["identifier"])
        taken = (
            get_user_model().objects.filter(email__iexact=email).exists()
            if email
            else Profile.objects.filter(phone=phone).exists()
        )
        if taken:
            raise ValidationError(
                _("An account with this email address or mobile number already exists."),
                code="taken",
            )
        return email, phone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error(
                "password2", ValidationError(_("The two passwords differ."), code="mismatch")
            )
        elif first:
            email, phone = data.get("identifier") or ("", "")
            probe = get_user_model()(username=email or phone, email=email)
            try:
                password_validation.validate_password(first, probe)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class LoginForm(forms.Form):
    identifier = forms.CharField(
        label=_("Email or mobile number"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: Any = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        identifier, password = data.get("identifier"), data.get("password")
        if identifier and password:
            self.user = authenticate(self.request, username=identifier, password=password)
            if self.user is None:
                # One message whether or not the account exists.
                raise ValidationError(
                    _("The email/mobile number or the password is wrong."), code="invalid_login"
                )
        return data


class OTPForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code from your authenticator app"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise ValidationError(_("The code has 6 digits."), code="otp_format")
        return code


COMMON_TIME_ZONES = (
    "Asia/Hong_Kong",
    "Asia/Shanghai",
    "Asia/Taipei",
    "Asia/Macau",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "Australia/Sydney",
    "America/Los_Angeles",
    "America/New_York",
    "UTC",
)


def _zone_label(name: str) -> str:
    return name.replace("_", " ")


def time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones most subscribers live in first, then every zone A to Z. A
    select with groups: searchable by typing, with or without scripts."""
    every = sorted(zoneinfo.available_timezones())
    common = [name for name in COMMON_TIME_ZONES if name in every or name == "UTC"]
    return [
        (str(_("Common time zones")), [(name, _zone_label(name)) for name in common]),
        (str(_("All time zones")), [(name, _zone_label(name)) for name in every]),
    ]


class PreferencesForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=time_zone_choices,
        help_text=_("Dates and times on the site and in receipts are shown in this zone."),
        error_messages={
            "invalid_choice": _("Choose a time zone from the list, for example Asia/Hong_Kong."),
            "required": _("Choose a time zone."),
        },
    )


class VerifiedPasswordResetForm(PasswordResetForm):
    """Sends the link only to a proven address; the page after it is the same
    whether or not anything was sent."""

    def get_users(self, email: str) -> Any:
        for user in super().get_users(email):
            profile = Profile.objects.filter(user=user).first()
            if profile is not None and profile.email_verified_at is not None:
                yield user

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        """Queue the link in the notification outbox instead of mailing it here."""
        from .verification import send_password_reset_email

        path = reverse(
            "accounts:password_reset_confirm",
            kwargs={"uidb64": context["uid"], "token": context["token"]},
        )
        reset_url = f"{context['protocol']}://{context['domain']}{path}"
        send_password_reset_email(context["user"], to_email, reset_url)


class PhoneCodeForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code from the text message"),
        max_length=6,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "6"}
        ),
        error_messages={"required": _("Enter the 6-digit code.")},
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if len(code) != 6 or not code.isdigit():
            raise ValidationError(_("The code has 6 digits."), code="code_format")
        return code


class SmsResetRequestForm(forms.Form):
    phone = forms.CharField(
        label=_("Mobile number"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
        error_messages={"required": _("Enter your mobile number.")},
    )

    def clean_phone(self) -> str:
        try:
            return normalize_msisdn(self.cleaned_data["phone"])
        except ValidationError as exc:
            raise ValidationError(
                _("Enter a mobile number, for example +852 9123 4567."), code="phone_invalid"
            ) from exc


class SmsResetCodeForm(PhoneCodeForm):
    new_password1 = forms.CharField(
        label=_("New password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label=_("New password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("new_password1"), data.get("new_password2")
        if first and second and first != second:
            self.add_error(
                "new_password2", ValidationError(_("The two passwords differ."), code="mismatch")
            )
        elif first:
            try:
                password_validation.validate_password(first, self.user)
            except ValidationError as exc:
                self.add_error("new_password1", exc)
        return data
