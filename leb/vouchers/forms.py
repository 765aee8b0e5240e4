"""The redemption form: which line (one of mine, or any number) and the PIN."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from leb.lines.identifiers import format_msisdn, normalize_msisdn
from leb.lines.models import Line

OTHER = "other"


class RedeemForm(forms.Form):
    line = forms.ChoiceField(
        label=_("Line to top up"), required=False, widget=forms.RadioSelect, choices=()
    )
    number = forms.CharField(
        label=_("Phone number"),
        required=False,
        max_length=32,
        help_text=_("The leb number to top up, e.g. 9123 4567 or +852 9123 4567."),
        widget=forms.TextInput(
            attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "+852 9123 4567"}
        ),
    )
    pin = forms.CharField(
        label=_("Voucher PIN"),
        max_length=40,
        error_messages={"required": _("Enter the PIN printed on the voucher.")},
        help_text=_("16 digits, under the scratch-off panel. Spaces and dashes are fine."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"}
        ),
    )

    def __init__(self, *args: Any, lines: list[Line], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines = {str(line.pk): line for line in lines}
        if lines:
            cast(forms.ChoiceField, self.fields["line"]).choices = [
                *((str(line.pk), format_msisdn(line.msisdn)) for line in lines),
                (OTHER, _("Another number")),
            ]
            self.fields["number"].label = _("Another number")
        else:
            del self.fields["line"]

    def clean_number(self) -> str:
        raw = self.cleaned_data.get("number", "")
        return normalize_msisdn(raw) if raw.strip() else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        picked = data.get("line") or ""
        if picked and picked != OTHER:
            data["own_line"] = self.lines[picked]
        elif not data.get("number") and "number" not in self.errors:
            raise ValidationError({"number": _("Enter a phone number.")})
        else:
            data["own_line"] = None
        return data
