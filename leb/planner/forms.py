"""The keep-plan question: until when, and may the line spend days in grace."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .queries import target_problem


class KeepPlanForm(forms.Form):
    until = forms.DateField(
        label=_("Keep my number until"),
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Enter the date until which to keep the number."),
            "invalid": _("Enter a date as YYYY-MM-DD, for example 2030-12-31."),
        },
    )
    allow_grace = forms.BooleanField(
        label=_("Allow grace days (receive-only) when that is cheaper"),
        required=False,
    )

    def __init__(self, *args: Any, now: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = now

    def clean_until(self) -> Any:
        until = self.cleaned_data["until"]
        problem = target_problem(until, self.now)
        if problem is not None:
            raise forms.ValidationError(problem[1], code=problem[0])
        return until
