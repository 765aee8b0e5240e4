from __future__ import annotations

from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from leb.common.formatting import format_local_date, format_phone
from leb.lines.identifiers import normalize_msisdn
from leb.lines.models import Line
from leb.topups.models import TopUpOrder

from .actions import MAX_BODY
from .models import TicketCategory

RECENT_ORDERS = 10


class LineChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.msisdn or obj.iccid


class OrderChoiceField(forms.ModelChoiceField):
    # The form sets the viewer's zone, so the day shown is the day they paid.
    tz: tzinfo = ZoneInfo("UTC")

    def label_from_instance(self, obj: Any) -> str:
        return _("%(date)s · %(number)s · %(status)s") % {
            "date": format_local_date(obj.created_at, self.tz, fmt="medium"),
            "number": format_phone(obj.line.msisdn) if obj.line.msisdn else obj.line.iccid,
            "status": obj.get_status_display(),
        }


class GuestContactMixin:
    """A guest (not signed in) must leave an email address or a mobile number,
    so staff can answer; a signed-in user is answered on their account."""

    user: Any
    cleaned_data: dict[str, Any]
    errors: Any

    def clean_contact_phone(self) -> str:
        value = self.cleaned_data.get("contact_phone", "")
        return normalize_msisdn(value) if value.strip() else ""

    def require_guest_contact(self, data: dict[str, Any]) -> None:
        contact_ok = not ({"contact_email", "contact_phone"} & set(self.errors))
        if (
            self.user is None
            and contact_ok
            and not (data.get("contact_email") or data.get("contact_phone"))
        ):
            raise ValidationError(
                _("Enter an email address or a mobile number so we can answer you."),
                code="contact",
            )


class TicketForm(GuestContactMixin, forms.Form):
    """The contact form. Signed in: optionally about one of the user's lines or
    recent orders. Guest: an email address or a mobile number for the answer.
    With `order` given (the report-this-top-up page) topic and order are fixed."""

    subject = forms.CharField(label=_("Subject"), max_length=200)
    category = forms.ChoiceField(label=_("Topic"), choices=TicketCategory.choices)
    line = LineChoiceField(label=_("Line (optional)"), queryset=Line.objects.none(), required=False)
    order = OrderChoiceField(
        label=_("Top-up (optional)"), queryset=TopUpOrder.objects.none(), required=False
    )
    message = forms.CharField(
        label=_("Message"),
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": _("Write a message.")},
    )
    contact_email = forms.EmailField(
        label=_("Email address"),
        required=False,
        error_messages={"invalid": _("Enter a valid email address, like name@example.com.")},
    )
    contact_phone = forms.CharField(
        label=_("Mobile number"),
        required=False,
        max_length=32,
        help_text=_("Enter an email address, a mobile number, or both. We answer there."),
    )

    def __init__(
        self,
        *args: Any,
        user: Any,
        order: TopUpOrder | None = None,
        tz: tzinfo | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.user = user if user is not None and user.is_authenticated else None
        self.fixed_order = order
        self.fields["subject"].error_messages["required"] = _("Enter a subject.")
        if order is not None:
            # The report page: what and which order are already known.
            del self.fields["category"], self.fields["line"], self.fields["order"]
        elif self.user is not None:
            lines = Line.objects.filter(owner=self.user).select_related("phone_number")
            orders = (
                TopUpOrder.objects.filter(Q(customer=self.user) | Q(line__owner=self.user))
                .select_related("line__phone_number")
                .order_by("-created_at", "-pk")
            )
            self.fields["line"].queryset = lines  # type: ignore[attr-defined]
            recent = list(orders.values_list("pk", flat=True)[:RECENT_ORDERS])
            self.fields["order"].queryset = orders.filter(pk__in=recent)  # type: ignore[attr-defined]
            if tz is not None:
                self.fields["order"].tz = tz  # type: ignore[attr-defined]
        else:
            del self.fields["line"], self.fields["order"]
        if self.user is not None:
            del self.fields["contact_email"], self.fields["contact_phone"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.require_guest_contact(data)
        line, order = data.get("line"), data.get("order")
        if line is not None and order is not None and order.line_id != line.pk:
            self.add_error("order", _("This top-up is for a different line."))
        return data


class ReplyForm(forms.Form):
    message = forms.CharField(
        label=_("Your reply"),
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Write a message.")},
    )


class FraudReportForm(GuestContactMixin, forms.Form):
    """A report of a seller who may be posing as a leb agent. What the visitor
    searched for comes from the agent check; the rest is what they know."""

    searched = forms.CharField(
        label=_("What you checked (agent code, address, number or handle)"),
        max_length=200,
        error_messages={"required": _("Enter the code, address, number or handle you checked.")},
    )
    seller_name = forms.CharField(
        label=_("Seller's name (optional)"), max_length=200, required=False
    )
    seller_contact = forms.CharField(
        label=_("Seller's shop address, handle or number (optional)"),
        max_length=200,
        required=False,
    )
    message = forms.CharField(
        label=_("What happened"),
        max_length=MAX_BODY - 1000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Where you met the seller, what they asked for, and whether you paid."),
        error_messages={"required": _("Tell us what happened.")},
    )
    contact_email = TicketForm.base_fields["contact_email"]
    contact_phone = TicketForm.base_fields["contact_phone"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.user = user if user is not None and user.is_authenticated else None
        if self.user is not None:
            del self.fields["contact_email"], self.fields["contact_phone"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.require_guest_contact(data)
        return data
