"""Back office for top-up orders: read-only, because orders change only through
their actions; staff can refund completed ones."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb import clock
from leb.catalog.quotes import Quote
from leb.ledger.actions import LedgerError
from leb.lines.admin import (
    ReadOnlyAdmin,
    error_text,
    format_money,
    format_when,
    staff_actor,
    status_label,
)
from leb.lines.identifiers import format_msisdn

from .actions import do_refund_order
from .models import ReceiptCounter, TopUpOrder

_BREAKDOWN_LABELS = {
    "list_price": _("List price"),
    "discount": _("Discount"),
    "price": _("Price paid"),
    "credit": _("Credit"),
    "bonus_credit": _("Bonus credit"),
    "restore_fee": _("Restore fee"),
}


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
    list_filter = ("status", "channel", "currency", "refund_due", "payment_provider")
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
        return request.user.has_perm("topups.change_topuporder")

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
            (str(_BREAKDOWN_LABELS.get(key, key)), format_money(amount, frozen.currency))
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
