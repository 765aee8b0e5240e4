"""The sandbox's hosted card form. The card number lives only in this request:
it is validated, classified and dropped, never saved or logged."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from stdnum import luhn

from leb.common import clock


class BlankInput(forms.TextInput):
    """Never echo what was typed back into the page."""

    def format_value(self, value: Any) -> str | None:
        return None


def _digits(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "")


class CardForm(forms.Form):
    number = forms.CharField(
        label=_("Card number"),
        max_length=30,
        widget=BlankInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    expiry = forms.CharField(
        label=_("Expiry (MM/YY)"),
        max_length=7,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "12/30"}
        ),
    )
    cvc = forms.CharField(
        label=_("CVC"),
        max_length=4,
        widget=BlankInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    name = forms.CharField(
        label=_("Name on card"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "cc-name"}),
    )

    def __init__(self, *args: Any, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now or clock.now()

    def clean_number(self) -> str:
        number = _digits(self.cleaned_data["number"])
        if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn.is_valid(number):
            raise forms.ValidationError(_("Enter a valid card number."), code="invalid_number")
        return number

    def clean_expiry(self) -> tuple[int, int]:
        match = re.fullmatch(r"\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*", self.cleaned_data["expiry"])
        if not match:
            raise forms.ValidationError(_("Enter the expiry date as MM/YY."), code="invalid_expiry")
        month, year = int(match.group(1)), int(match.group(2))
        if year < 100:
            year += 2000
        if not 1 <= month <= 12:
            raise forms.ValidationError(_("Enter the expiry date as MM/YY."), code="invalid_expiry")
        if (year, month) < (self.now.year, self.now.month):
            raise forms.ValidationError(_("This card has expired."), code="expired_card")
        return month, year

    def clean_cvc(self) -> str:
        cvc = self.cleaned_data["cvc"].strip()
        if not re.fullmatch(r"\d{3,4}", cvc):
            raise forms.ValidationError(
                _("Enter the 3 or 4 digit security code."), code="invalid_cvc"
            )
        return cvc
