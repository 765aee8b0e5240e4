from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from leb.lines.identifiers import normalize_iccid, normalize_msisdn

METHOD_ACTIVATION_CODE = "activation_code"
METHOD_SMS = "sms"


class BindLineForm(forms.Form):
    iccid = forms.CharField(
        label=_("ICCID"),
        max_length=40,
        help_text=_("19 or 20 digits starting with 89, printed with your eSIM QR code."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    number = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    activation_code = forms.CharField(
        label=_("Activation code"),
        max_length=300,
        required=False,
        help_text=_("The text under your eSIM QR code, e.g. LPA:1$smdp.example.com$ABC-123."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )
    method = forms.ChoiceField(
        choices=[(METHOD_ACTIVATION_CODE, METHOD_ACTIVATION_CODE), (METHOD_SMS, METHOD_SMS)],
        # Set by the submit button; Enter in a text field submits the first
        # button, which is the activation code one.
        required=False,
    )

    def clean_iccid(self) -> str:
        return normalize_iccid(self.cleaned_data["iccid"])

    def clean_number(self) -> str:
        return normalize_msisdn(self.cleaned_data["number"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("method"):
            cleaned["method"] = METHOD_ACTIVATION_CODE
        if (
            cleaned["method"] == METHOD_ACTIVATION_CODE
            and not cleaned.get("activation_code", "").strip()
        ):
            self.add_error(
                "activation_code",
                _("Enter the activation code, or ask for a code by text message."),
            )
        return cleaned


class SmsCodeForm(forms.Form):
    code = forms.CharField(
        label=_("6-digit code"),
        max_length=6,
        min_length=6,
        validators=[RegexValidator(r"^\d{6}$", _("Enter the 6 digits of the code."))],
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": "6"}
        ),
    )
