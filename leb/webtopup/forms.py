"""Forms of the online top-up: find the line, then choose what to buy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from leb.catalog.models import FreeAmountRule, Plan
from leb.common.formatting import format_money
from leb.common.money import parse_amount
from leb.lines.identifiers import normalize_msisdn

AMOUNT = "amount"


class NumberForm(forms.Form):
    number = forms.CharField(
        label=_("Phone number"),
        max_length=32,
        error_messages={"required": _("Enter a phone number.")},
        help_text=_("The leb number to top up, e.g. 9123 4567 or +852 9123 4567."),
        widget=forms.TextInput(
            attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "+852 9123 4567"}
        ),
    )

    def clean_number(self) -> str:
        return normalize_msisdn(self.cleaned_data["number"])


class ChoiceForm(forms.Form):
    """A plan from those on offer, or a free amount, plus an optional promo code."""

    choice = forms.ChoiceField(label=_("Choose a top-up"), required=False, widget=forms.RadioSelect)
    amount = forms.CharField(
        label=_("Another amount"),
        required=False,
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    promo_code = forms.CharField(
        label=_("Promo code (optional)"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
    )

    def __init__(
        self,
        *args: Any,
        plans: list[Plan],
        rule: FreeAmountRule | None,
        currency: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.plans = {plan.code: plan for plan in plans}
        self.rule = rule
        self.currency = currency
        choices = [(plan.code, plan.display_name()) for plan in plans]
        if rule is not None:
            choices.append((AMOUNT, str(_("Another amount"))))
        field = self.fields["choice"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices
        field.error_messages["invalid_choice"] = _("Choose one of the top-ups shown.")

    def clean_promo_code(self) -> str:
        return str(self.cleaned_data.get("promo_code") or "").strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        choice = data.get("choice") or ""
        raw_amount = str(data.get("amount") or "").strip()
        data["plan"], data["amount_minor"] = None, None
        if "choice" in self.errors:
            return data
        if choice and choice != AMOUNT:
            data["plan"] = self.plans[choice]
            return data
        if not choice and not raw_amount:
            raise ValidationError(_("Choose a plan or enter an amount."), code="nothing_chosen")
        if self.rule is None:
            self.add_error("amount", _("Top-ups of a free amount are not available for this line."))
            return data
        if not raw_amount:
            self.add_error("amount", _("Enter the amount you want to top up."))
            return data
        try:
            minor = parse_amount(raw_amount, self.currency)
        except ValidationError as exc:
            self.add_error("amount", exc)
            return data
        if not self.rule.min_amount <= minor <= self.rule.max_amount:
            self.add_error(
                "amount",
                ValidationError(
                    _("Enter an amount between %(min)s and %(max)s."),
                    code="amount_range",
                    params={
                        "min": format_money(self.rule.min_amount, self.currency),
                        "max": format_money(self.rule.max_amount, self.currency),
                    },
                ),
            )
            return data
        data["amount_minor"] = minor
        return data
