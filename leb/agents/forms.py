from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from . import queries


class VerifyForm(forms.Form):
    """One box: an agent code, a shop address, a phone number or a handle."""

    q = forms.CharField(
        label=_("Agent code, shop address, phone number or handle"),
        max_length=queries.MAX_QUERY,
        help_text=_(
            "For example HK-7KQ2MX, shop.example.com/kowloon, +852 9123 4567 or @kowloonphones."
        ),
        error_messages={
            "required": _(
                "Enter an agent code, a shop address, a phone number or a social media handle."
            ),
            "max_length": _(
                "This is too long or contains characters an agent code, address or handle "
                "never has."
            ),
        },
    )

    def clean_q(self) -> queries.Search:
        return queries.parse_search(self.cleaned_data["q"])

    def search(self) -> Any:
        return self.cleaned_data["q"]
