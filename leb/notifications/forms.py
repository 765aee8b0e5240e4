from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from leb.lines.identifiers import normalize_msisdn

from .webhooks import check_webhook_url


class PreferencesForm(forms.Form):
    email_enabled = forms.BooleanField(label=_("Send me emails"), required=False)
    email_address = forms.EmailField(
        label=_("Email address for notifications"),
        required=False,
        help_text=_("Leave empty to use your account's email address."),
        error_messages={"invalid": _("Enter a valid email address, like name@example.com.")},
    )
    sms_enabled = forms.BooleanField(label=_("Send me text messages (SMS)"), required=False)
    sms_number = forms.CharField(
        label=_("Mobile number for SMS"),
        required=False,
        max_length=32,
        help_text=_("Leave empty to use your account's mobile number."),
    )
    webhook_url = forms.CharField(
        label=_("Webhook URL"),
        required=False,
        max_length=500,
        help_text=_("leb POSTs each notification as signed JSON to this https:// address."),
    )
    quiet_start = forms.TimeField(
        label=_("Quiet hours from"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": _("Enter a time like 22:00.")},
    )
    quiet_end = forms.TimeField(
        label=_("Quiet hours until"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": _("Enter a time like 08:00.")},
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_sms_number(self) -> str:
        raw = self.cleaned_data["sms_number"].strip()
        return normalize_msisdn(raw) if raw else ""

    def clean_webhook_url(self) -> str:
        raw = self.cleaned_data["webhook_url"].strip()
        return check_webhook_url(raw) if raw else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        profile = getattr(self.user, "profile", None)
        no_email = not (data.get("email_address") or self.user.email)
        if data.get("email_enabled") and no_email and "email_address" not in self.errors:
            self.add_error(
                "email_address",
                ValidationError(
                    _("Enter an email address, or switch emails off."), code="email_missing"
                ),
            )
        no_phone = not (data.get("sms_number") or getattr(profile, "phone", ""))
        if data.get("sms_enabled") and no_phone and "sms_number" not in self.errors:
            self.add_error(
                "sms_number",
                ValidationError(
                    _("Enter a mobile number, or switch text messages off."), code="sms_missing"
                ),
            )
        start, end = data.get("quiet_start"), data.get("quiet_end")
        if "quiet_start" not in self.errors and "quiet_end" not in self.errors:
            if (start is None) != (end is None):
                raise ValidationError(
                    _("Give both the start and the end of your quiet hours, or neither."),
                    code="quiet_half",
                )
            if start is not None and start == end:
                raise ValidationError(
                    _("Quiet hours must end at a different time than they start."),
                    code="quiet_empty",
                )
        return data
