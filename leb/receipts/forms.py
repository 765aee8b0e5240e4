from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from leb.common.formatting import format_phone
from leb.lines.models import Line
from leb.topups.models import OrderStatus

from .queries import HISTORY_STATUSES, user_lines

if TYPE_CHECKING:
    _LineField = forms.ModelChoiceField[Line]
else:
    # Subscripting form fields only works for the type checker.
    _LineField = forms.ModelChoiceField


class LineChoiceField(_LineField):
    def label_from_instance(self, obj: Line) -> str:
        return format_phone(obj.msisdn) or obj.iccid


class HistoryFilterForm(forms.Form):
    line = LineChoiceField(
        label=_("Number"), queryset=Line.objects.none(), required=False, empty_label=_("All")
    )
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    status = forms.ChoiceField(label=_("Status"), required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        line_field = self.fields["line"]
        assert isinstance(line_field, LineChoiceField)
        line_field.queryset = user_lines(user)
        status_field = self.fields["status"]
        assert isinstance(status_field, forms.ChoiceField)
        status_field.choices = [("", _("All"))] + [
            (value, OrderStatus(value).label) for value in HISTORY_STATUSES
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(
                _("The start date must not be after the end date."), code="date_range"
            )
        return data
