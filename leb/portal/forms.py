from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class QuickCheckForm(forms.Form):
    number = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        error_messages={"required": _("Enter a phone number.")},
        help_text=_("Your leb number, e.g. 9123 4567 or +852 9123 4567."),
        widget=forms.TextInput(
            attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "+852 9123 4567"}
        ),
    )
