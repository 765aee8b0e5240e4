"""Back office for top-up orders: read-only, because orders change only through
their actions; staff can refund completed ones and top up a line by hand."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.catalog.models import Plan
from leb.catalog.quotes import Quote, breakdown_label
from leb.common import clock
from leb.common.admin import ReadOnlyAdmin, error_text, format_money, format_when, staff_actor
from leb.ledger.actions import LedgerError
from leb.lines import admin as lines_admin
from leb.lines.admin import status_label
from leb.lines.identifiers import format_msisdn
from leb.lines.models import Line

from .actions import do_admin_topup, do_refund_order
from .models import ReceiptCounter, TopUpOrder


def days_added_label(added: int, plan_days: int) -> str:
    """Either "180" or "12 (fewer than the plan's 180: validity cap or reset rule)"."""
    if added >= plan_days:
        return str(added)
    return str(
        _("%(added)d (fewer than the plan's %(days)d: validity cap or reset rule)")
        % {"added": added, "days": plan_days}
    )


def manual_topup_notes(order: TopUpOrder) -> list[str]:
    """For staff after a manual top-up: the days really added, and a warning
    when fewer than the plan's days (empty list when all were added)."""
    from leb.catalog.quotes import days_added_sentence

    frozen = Quote.from_dict(order.quote)
    if not frozen.adds_fewer_days:
        return []
    return [
        days_added_sentence(
            frozen,
            date=format_when(order.valid_until_after or frozen.new_valid_until),
            cap_days=order.line.policy.max_validity_days,
            done=True,
        )
    ]


class RefundForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        label=_("Reason"),
        help_text=_("Kept with the order and in the audit log."),
        widget=forms.TextInput(attrs={"size": 60}),
    )


@admin.register(TopUpOrder)
class TopUpOrderAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "created_at",
        "line_display",
        "channel",
        "plan",
        "price_display",
        "status",
        "valid_until_after",
        "refund_due",
    )
    list_filter = (
        "status",
        "channel",
        "currency",
        "refund_due",
        "payment_provider",
        ("fulfilled_at", admin.DateFieldListFilter),
    )
    list_select_related = ("line__phone_number", "plan")
    search_fields = (
        "receipt_number",
        "public_id",
        "line__iccid",
        "line__phone_number__msisdn",
        "payment_reference",
        "idempotency_key",
        "customer__username",
    )
    date_hierarchy = "created_at"
    actions = ["refund_orders"]
    readonly_fields = (
        "line_link",
        "price_display",
        "paid_display",
        "quote_display",
        "days_added_display",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "receipt_number",
                    "line_link",
                    "channel",
                    "plan",
                    "status",
                    "price_display",
                    "customer",
                    "actor",
                )
            },
        ),
        (_("Frozen quote"), {"fields": ("quote_display",)}),
        (
            _("Payment"),
            {
                "fields": (
                    "created_at",
                    "expires_at",
                    "paid_at",
                    "paid_display",
                    "payment_provider",
                    "payment_reference",
                )
            },
        ),
        (
            _("Outcome"),
            {
                "fields": (
                    "fulfilled_at",
                    "valid_until_after",
                    "days_added_display",
                    "finished_at",
                    "failure_reason",
                    "refunded_at",
                    "refund_due",
                )
            },
        ),
        (
            _("Idempotency"),
            {"fields": ("idempotency_key", "request_hash"), "classes": ("collapse",)},
        ),
    )

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("topups.refund_topuporder") or request.user.has_perm(
            "topups.refund_any_topuporder"
        )

    def refund_refusal(self, request: HttpRequest, order: TopUpOrder) -> str:
        """Why this member of staff may not refund `order` ("" when they may):
        above the support limit it takes the finance role."""
        if request.user.has_perm("topups.refund_any_topuporder"):
            return ""
        limit = settings.SUPPORT_REFUND_LIMITS.get(order.currency)
        if limit is not None and order.price <= limit:
            return ""
        if limit is None:
            return str(
                _("%(order)s: refunds in %(currency)s need the finance role.")
                % {"order": self.reference(order), "currency": order.currency}
            )
        return str(
            _("%(order)s: refunds above %(limit)s need the finance role.")
            % {"order": self.reference(order), "limit": format_money(limit, order.currency)}
        )

    @admin.display(description=_("reference"), ordering="receipt_number")
    def reference(self, order: TopUpOrder) -> str:
        return order.receipt_number or str(order.public_id)[:8]

    @admin.display(description=_("line"), ordering="line__phone_number__msisdn")
    def line_display(self, order: TopUpOrder) -> str:
        line = order.line
        return format_msisdn(line.msisdn) if line.phone_number_id else line.iccid

    @admin.display(description=_("line"))
    def line_link(self, order: TopUpOrder) -> SafeString:
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:lines_line_change", args=[order.line_id]),
            self.line_display(order),
            order.line.iccid,
        )

    @admin.display(description=_("price"), ordering="price")
    def price_display(self, order: TopUpOrder) -> str:
        return format_money(order.price, order.currency)

    @admin.display(description=_("paid amount"))
    def paid_display(self, order: TopUpOrder) -> str:
        return format_money(order.paid_amount, order.currency)

    @admin.display(description=_("what was sold"))
    def quote_display(self, order: TopUpOrder) -> SafeString | str:
        try:
            frozen = Quote.from_dict(order.quote)
        except (KeyError, TypeError, ValueError):
            # Shown as stored rather than failing the page.
            return json.dumps(order.quote, ensure_ascii=False, sort_keys=True)
        rows = [
            (breakdown_label(key), format_money(amount, frozen.currency))
            for key, amount in frozen.breakdown()
        ]
        days = str(
            _("%(plan)d + %(bonus)d bonus") % {"plan": frozen.plan_days, "bonus": frozen.bonus_days}
        )
        rows += [
            (str(_("Validity days")), days),
            (str(_("Valid until before")), format_when(frozen.current_valid_until)),
            (str(_("Valid until after")), format_when(frozen.new_valid_until)),
            (str(_("Promotion")), frozen.promotion_code or "-"),
            (str(_("Line status when quoted")), status_label(frozen.status_before)),
        ]
        if frozen.capped:
            rows.append((str(_("Days lost to the validity cap")), str(frozen.days_lost_to_cap)))
        added = order.days_added if order.days_added is not None else frozen.days_added
        rows.append((str(_("Days added")), days_added_label(added, frozen.validity_days)))
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description=_("days added"))
    def days_added_display(self, order: TopUpOrder) -> str:
        try:
            frozen = Quote.from_dict(order.quote)
        except (KeyError, TypeError, ValueError):
            return "-"
        added = order.days_added if order.days_added is not None else frozen.days_added
        return days_added_label(added, frozen.validity_days)

    @admin.action(description=_("Refund selected top-ups"), permissions=["refund"])
    def refund_orders(
        self, request: HttpRequest, queryset: QuerySet[TopUpOrder]
    ) -> TemplateResponse | None:
        form = RefundForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._refund(request, queryset, form.cleaned_data["reason"])
            return None
        orders = list(queryset.select_related("line__phone_number").order_by("pk"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund top-ups"),
            "opts": self.opts,
            "queryset": orders,
            "rows": [
                {
                    "receipt": self.reference(order),
                    "line": self.line_display(order),
                    "price": self.price_display(order),
                    "status": order.get_status_display(),
                }
                for order in orders
            ],
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/topups/topuporder/refund_confirmation.html", context
        )

    def _refund(self, request: HttpRequest, queryset: QuerySet[TopUpOrder], reason: str) -> None:
        actor = staff_actor(request)
        refunded = 0
        for order in queryset.order_by("pk"):
            refusal = self.refund_refusal(request, order)
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                continue
            now = clock.now()
            try:
                with transaction.atomic():
                    done = do_refund_order(order, reason=reason, actor=actor, now=now)
                    if done.refunded_at != now:
                        # Refunded earlier: the action changed nothing, so nothing to audit.
                        self.message_user(
                            request,
                            _("%(order)s was already refunded.") % {"order": self.reference(order)},
                            messages.WARNING,
                        )
                        continue
            except (ValidationError, LedgerError) as exc:
                self.message_user(
                    request,
                    _("%(order)s: %(error)s")
                    % {"order": self.reference(order), "error": error_text(exc)},
                    messages.ERROR,
                )
            else:
                refunded += 1
        if refunded:
            self.message_user(
                request,
                ngettext("Refunded %(count)d top-up.", "Refunded %(count)d top-ups.", refunded)
                % {"count": refunded},
                messages.SUCCESS,
            )


@admin.register(ReceiptCounter)
class ReceiptCounterAdmin(ReadOnlyAdmin):
    list_display = ("year", "last")


# --- Manual top-up from a line's page ---------------------------------------------


admin.site.unregister(Line)


@admin.register(Line)
class LineAdmin(lines_admin.LineAdmin):
    """The line pages, with the manual top-up that top-ups own."""

    def has_topup_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("topups.add_topuporder")

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<path:object_id>/topup/",
                self.admin_site.admin_view(self.topup_view),
                name="lines_line_topup",
            )
        ]
        return custom + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_topup": self.has_topup_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def topup_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_topup_permission(request):
            raise PermissionDenied
        line = self.get_object(request, unquote(object_id))
        if line is None:
            self.message_user(
                request,
                _("The line with ID %(id)s does not exist.") % {"id": object_id},
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:lines_line_changelist"))
        change_url = reverse("admin:lines_line_change", args=[line.pk])
        if request.method == "POST":
            form = ManualTopUpForm(request.POST, line=line)
            if form.is_valid():
                order = form.submit(staff=request.user)
                if order is not None:
                    self.message_user(request, form.success_message(order), messages.SUCCESS)
                    # Fewer days than the plan (validity cap or reset rule): say so.
                    for note in manual_topup_notes(order):
                        self.message_user(request, note, messages.WARNING)
                    return HttpResponseRedirect(change_url)
        else:
            form = ManualTopUpForm(line=line)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Manual top-up of %(line)s") % {"line": str(line)},
            "opts": self.opts,
            "original": line,
            "form": form,
            "line_number": self.number(line),
            "line_status": self.effective_status(line),
            "line_balance": self.balance(line),
            "line_valid_until": format_when(line.valid_until),
            "change_url": change_url,
            "has_view_permission": self.has_view_permission(request, line),
        }
        return TemplateResponse(request, "admin/lines/line/topup.html", context)


# Where an action's refusal belongs on the form, by its error code.
_ERROR_FIELDS = {
    "amount_not_positive": "amount",
    "amount_range": "amount",
    "amount_unavailable": "amount",
    "plan_inactive": "plan",
    "plan_currency": "plan",
    "plan_channel": "plan",
    "plan_unknown": "plan",
    "reason_required": "reason",
}


def new_topup_key(line: Line) -> str:
    return f"admin:{line.pk}:{uuid.uuid4().hex}"


class PlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(
            _("%(name)s: %(price)s, %(days)d days")
            % {
                "name": obj,
                "price": format_money(obj.price, obj.currency),
                "days": obj.validity_days,
            }
        )


class ManualTopUpForm(forms.Form):
    """A staff top-up. The idempotency key is made when the form is first shown
    and travels in a hidden field, so posting the same form twice (a double
    click, a resent request) tops up once."""

    plan = PlanChoiceField(queryset=Plan.objects.none(), required=False, label=_("Plan"))
    amount = forms.IntegerField(
        required=False,
        label=_("or an amount (minor units)"),
        help_text=_("e.g. 5000 for 50.00; gives the validity of the currency's free-amount rule"),
    )
    reason = forms.CharField(
        max_length=200,
        label=_("Reason"),
        help_text=_(
            "Kept in the audit log, e.g. a ticket number or a payment taken at the counter."
        ),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def __init__(self, *args: Any, line: Line, **kwargs: Any) -> None:
        if not args and "initial" not in kwargs:
            kwargs["initial"] = {"idempotency_key": new_topup_key(line)}
        super().__init__(*args, **kwargs)
        self.line = line
        self.fields["plan"].queryset = Plan.objects.filter(currency=line.currency, is_active=True)  # type: ignore[attr-defined]
        self.replayed = False

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        if not re.fullmatch(rf"admin:{self.line.pk}:[0-9a-f]{{32}}", key):
            raise ValidationError(
                _("This form has expired; please reload the page."), code="bad_key"
            )
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("plan") is not None and cleaned.get("amount") is not None:
            raise ValidationError(
                _("Choose a plan or an amount, not both."), code="plan_and_amount"
            )
        if (
            cleaned.get("plan") is None
            and cleaned.get("amount") is None
            and not self.has_error("amount")
        ):
            raise ValidationError(_("Choose a plan or enter an amount."), code="plan_or_amount")
        return cleaned

    def submit(self, *, staff: Any) -> TopUpOrder | None:
        """Top up; on a refusal, the reason becomes a form error and None is returned."""
        data = self.cleaned_data
        key = data["idempotency_key"]
        self.replayed = TopUpOrder.objects.filter(idempotency_key=key).exists()
        try:
            return do_admin_topup(
                line=self.line,
                staff=staff,
                reason=data["reason"],
                idempotency_key=key,
                plan=data.get("plan"),
                amount=data.get("amount"),
            )
        except ValidationError as exc:
            field = _ERROR_FIELDS.get(str(getattr(exc, "code", "") or ""))
            self.add_error(field, exc if not hasattr(exc, "error_dict") else error_text(exc))
            if getattr(exc, "code", "") == "key_conflict":
                self._renew_key()
        except LedgerError as exc:
            self.add_error(None, str(exc))
        return None

    def _renew_key(self) -> None:
        # The key went with a different top-up (the form was changed after a
        # successful submit): a fresh key lets staff submit this one on purpose.
        data = cast(QueryDict, self.data).copy()
        data["idempotency_key"] = new_topup_key(self.line)
        self.data = data

    def success_message(self, order: TopUpOrder) -> str:
        values = {
            "receipt": order.receipt_number or order.public_id,
            "price": format_money(order.price, order.currency),
            "date": format_when(order.valid_until_after),
        }
        if self.replayed:
            return str(
                _("This top-up was already done (receipt %(receipt)s); nothing was added.") % values
            )
        return str(_("Topped up %(price)s, receipt %(receipt)s; valid until %(date)s.") % values)
