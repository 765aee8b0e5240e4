"""Forms of the auto-keep pages. They only parse input; the rules about what
is allowed live in the actions, which raise AutoKeepError with a code that
`FIELD_FOR_CODE` ties to the field it is about."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from leb.payments.providers.base import get_provider, saving_provider_names

from .models import RuleMode, SavedPaymentMethod

FIELD_FOR_CODE = {
    "plan_required": "plan",
    "plan_currency": "plan",
    "plan_unavailable": "plan",
    "days_out_of_range": "days_before",
    "until_past": "until",
    "until_too_far": "until",
    "until_invalid": "until",
    "no_method": "method",
    "card_expired": "method",
    "mode_invalid": "mode",
}


class AddMethodForm(forms.Form):
    provider = forms.ChoiceField(label=_("Where to save the card"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(name, str(get_provider(name).label)) for name in saving_provider_names()]
        cast(forms.ChoiceField, self.fields["provider"]).choices = choices
        if len(choices) == 1:
            self.fields["provider"].initial = choices[0][0]


class RuleForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("How should auto-keep work?"),
        choices=RuleMode.choices,
        widget=forms.RadioSelect,
        initial=RuleMode.THRESHOLD,
    )
    plan = forms.CharField(label=_("Plan to top up"), required=False, widget=forms.Select)
    days_before = forms.IntegerField(
        label=_("Top up when this many days are left"),
        required=False,
        help_text=_("Only for “top up a plan when few days are left”."),
    )
    until = forms.DateField(
        label=_("Keep until (optional)"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter the end date as YYYY-MM-DD.")},
    )
    allow_grace = forms.BooleanField(
        label=_("Allow days in the grace period when that is cheaper (lowest cost only)"),
        required=False,
    )
    method = forms.TypedChoiceField(label=_("Card to charge"), coerce=int)

    def __init__(
        self,
        *args: Any,
        plan_choices: list[tuple[str, str]],
        methods: list[SavedPaymentMethod],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plan"].widget.choices = [("", "—"), *plan_choices]
        cast(forms.ChoiceField, self.fields["method"]).choices = [(m.pk, str(m)) for m in methods]
