from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from leb.lines.models import Line

from . import queries
from .actions import AgentRefused, clean_callback_url, find_line


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


# --- The agent portal -------------------------------------------------------------


class NumberForm(forms.Form):
    """The customer's number: a line in service, or a translated error."""

    msisdn = forms.CharField(
        label=_("Customer's phone number"),
        max_length=40,
        help_text=_("For example +852 9123 4567."),
        error_messages={"required": _("Enter the customer's phone number.")},
        widget=forms.TextInput(
            attrs={"inputmode": "tel", "autocomplete": "off", "autocapitalize": "off"}
        ),
    )

    def clean_msisdn(self) -> Line:
        try:
            return find_line(self.cleaned_data["msisdn"])
        except AgentRefused as exc:
            raise forms.ValidationError(exc.messages, code=exc.code) from exc


class PlanForm(forms.Form):
    plan = forms.ChoiceField(
        label=_("Plan"),
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a plan."),
            "invalid_choice": _("Choose one of the plans you may sell to this line."),
        },
    )

    def __init__(self, *args: Any, codes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["plan"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, code) for code in codes]


class ConfirmForm(forms.Form):
    ticket = forms.CharField(widget=forms.HiddenInput, max_length=2000)
    allow_repeat = forms.BooleanField(
        label=_("Yes, sell this plan to this number again"),
        required=False,
    )


class DateRangeForm(forms.Form):
    """A range of days in the operator's time zone, both included."""

    date_from = forms.DateField(
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Enter the first day."),
            "invalid": _("Enter a date like 2026-06-01."),
        },
    )
    date_to = forms.DateField(
        label=_("To"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Enter the last day."),
            "invalid": _("Enter a date like 2026-06-30."),
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start is not None and end is not None and not queries.statement_range_ok(start, end):
            raise forms.ValidationError(
                _("The last day must be on or after the first, at most %(days)d days later."),
                code="date_range_invalid",
                params={"days": queries.MAX_STATEMENT_DAYS - 1},
            )
        return data


class KeyForm(forms.Form):
    label = forms.CharField(
        label=_("Label"),
        max_length=100,
        required=False,
        help_text=_("Where the key is used, e.g. “shop till 2”."),
    )


class CallbackForm(forms.Form):
    callback_url = forms.CharField(
        label=_("Callback URL"),
        max_length=500,
        required=False,
        help_text=_(
            "leb POSTs each finished top-up to this https:// address, signed with your "
            "callback secret. Leave it empty to stop callbacks."
        ),
        widget=forms.URLInput(attrs={"autocomplete": "off", "placeholder": "https://"}),
    )

    def clean_callback_url(self) -> str:
        return clean_callback_url(self.cleaned_data.get("callback_url") or "")
