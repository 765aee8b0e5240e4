"""Back office for vouchers: batches with their counts per state, vouchers
searchable by serial (never by PIN), and the staff actions (distribute,
activate a batch, block a serial range), each through its action function,
which writes the audit row. Batches are generated with `leb vouchers
generate`, because only that command may ever hold the clear PINs."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.audit.audited_admin import AuditedAdmin
from leb.common import clock
from leb.common.admin import ReadOnlyAdmin, error_text, format_money, staff_actor
from leb.ledger.actions import LedgerError

from .actions import (
    SerialRange,
    do_activate_batch,
    do_block_vouchers,
    do_distribute_batch,
    serial_range,
)
from .distributor_admin import DistributorAccountViews
from .models import Distributor, Voucher, VoucherBatch, VoucherState


@admin.register(Distributor)
class DistributorAdmin(AuditedAdmin):
    list_display = ("code", "name", "contact", "created_at", "statement_link")
    search_fields = ("code", "name")

    def get_urls(self) -> list[URLPattern]:
        return [*DistributorAccountViews(self).urls(), *super().get_urls()]

    @admin.display(description=_("statement"))
    def statement_link(self, distributor: Distributor) -> str:
        url = reverse("admin:vouchers_distributor_statement", args=[distributor.pk])
        return format_html('<a href="{}">{}</a>', url, _("statement"))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        label=_("Reason"),
        help_text=_("Kept in the audit log."),
        widget=forms.TextInput(attrs={"size": 60}),
    )


class BlockRangeForm(ReasonForm):
    first = forms.CharField(label=_("First serial"), max_length=24)
    last = forms.CharField(
        label=_("Last serial"),
        max_length=24,
        required=False,
        help_text=_("Leave empty to block one voucher."),
    )
    field_order = ["first", "last", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("first"):
            try:
                data["span"] = serial_range(data["first"], data.get("last") or "")
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return data


def _can_change(request: HttpRequest) -> bool:
    return request.user.has_perm("vouchers.change_voucher")


STATE_COUNTS = [state.value for state in VoucherState]


@admin.register(VoucherBatch)
class VoucherBatchAdmin(ReadOnlyAdmin):
    list_display = (
        "code",
        "distributor",
        "value_display",
        "plan",
        "quantity",
        "state",
        "expires_at",
        "counts_display",
    )
    list_filter = ("state", "currency", "distributor")
    search_fields = ("code", "distributor__code", "distributor__name")
    list_select_related = ("distributor", "plan")
    actions = ["distribute_batches", "activate_batches"]
    readonly_fields = ("value_display", "counts_display")
    fields = (
        "code",
        "distributor",
        "currency",
        "value_display",
        "plan",
        "quantity",
        "luhn",
        "expires_at",
        "state",
        "counts_display",
        "created_at",
        "created_by",
        "exported_at",
        "export_name",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[VoucherBatch]:
        counts = {
            f"n_{state}": Count("vouchers", filter=Q(vouchers__state=state))
            for state in STATE_COUNTS
        }
        return super().get_queryset(request).annotate(**counts)

    def has_voucher_permission(self, request: HttpRequest) -> bool:
        return _can_change(request)

    @admin.display(description=_("value"), ordering="value")
    def value_display(self, batch: VoucherBatch) -> str:
        return format_money(batch.value, batch.currency)

    @admin.display(description=_("vouchers by state"))
    def counts_display(self, batch: VoucherBatch) -> str:
        labels = dict(VoucherState.choices)
        parts = [
            f"{labels[state]}: {getattr(batch, f'n_{state}', 0)}"
            for state in STATE_COUNTS
            if getattr(batch, f"n_{state}", 0)
        ]
        return " · ".join(parts) or "-"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "block/",
                self.admin_site.admin_view(self.block_view),
                name="vouchers_voucherbatch_block",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "can_block": _can_change(request)}
        return super().changelist_view(request, extra_context)

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet[VoucherBatch],
        *,
        action: str,
        title: Any,
        explanation: Any,
        button: Any,
        form: forms.Form,
    ) -> TemplateResponse:
        batches = list(queryset.order_by("pk"))
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "explanation": explanation,
            "button": button,
            "action": action,
            "queryset": batches,
            "rows": [
                f"{b.code} · {b.distributor.name} · {self.value_display(b)} x {b.quantity} · "
                f"{b.get_state_display()}"
                for b in batches
            ],
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/confirm_action.html", context)

    @admin.action(description=_("Mark selected batches as distributed"), permissions=["voucher"])
    def distribute_batches(
        self, request: HttpRequest, queryset: QuerySet[VoucherBatch]
    ) -> TemplateResponse | None:
        form = forms.Form(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self._confirm(
                request,
                queryset,
                action="distribute_batches",
                title=_("Mark batches as distributed"),
                explanation=_(
                    "The printed cards were handed to the distributor. No money moves "
                    "and the vouchers cannot be redeemed until their batch is activated."
                ),
                button=_("Mark as distributed"),
                form=form,
            )
        actor = staff_actor(request)
        for batch in queryset.order_by("pk"):
            do_distribute_batch(batch, actor=actor, now=clock.now())
        self.message_user(request, _("The batches were marked as distributed."), messages.SUCCESS)
        return None

    @admin.action(description=_("Activate selected batches"), permissions=["voucher"])
    def activate_batches(
        self, request: HttpRequest, queryset: QuerySet[VoucherBatch]
    ) -> TemplateResponse | None:
        form = forms.Form(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self._confirm(
                request,
                queryset,
                action="activate_batches",
                title=_("Activate voucher batches"),
                explanation=_(
                    "Activation makes every unsold voucher of the batch redeemable and "
                    "books its value: the distributor owes it, and leb owes it to the "
                    "card holders (voucher liability)."
                ),
                button=_("Activate"),
                form=form,
            )
        actor = staff_actor(request)
        for batch in queryset.order_by("pk"):
            try:
                count = do_activate_batch(batch, actor=actor, now=clock.now())
            except (ValidationError, LedgerError) as exc:
                self.message_user(
                    request,
                    _("%(batch)s: %(error)s") % {"batch": batch.code, "error": error_text(exc)},
                    messages.ERROR,
                )
                continue
            self.message_user(
                request,
                ngettext(
                    "%(batch)s: activated %(count)d voucher.",
                    "%(batch)s: activated %(count)d vouchers.",
                    count,
                )
                % {"batch": batch.code, "count": count},
                messages.SUCCESS,
            )
        return None

    def block_view(self, request: HttpRequest) -> HttpResponse:
        """Block a serial range in two steps: check what it covers, then confirm."""
        if not _can_change(request):
            raise PermissionDenied
        form = BlockRangeForm(request.POST or None)
        preview: dict[str, Any] | None = None
        if request.method == "POST" and form.is_valid():
            span: SerialRange = form.cleaned_data["span"]
            if "confirm" in request.POST:
                try:
                    result = do_block_vouchers(
                        span,
                        reason=form.cleaned_data["reason"],
                        actor=staff_actor(request),
                        now=clock.now(),
                    )
                except (ValidationError, LedgerError) as exc:
                    form.add_error(None, error_text(exc))
                else:
                    self.message_user(
                        request,
                        ngettext(
                            "Blocked %(count)d voucher (%(range)s).",
                            "Blocked %(count)d vouchers (%(range)s).",
                            result.blocked,
                        )
                        % {"count": result.blocked, "range": span.label},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:vouchers_voucherbatch_changelist"))
            in_range = Voucher.objects.filter(
                batch=span.batch, number__gte=span.first, number__lte=span.last
            )
            by_state = dict(
                in_range.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
            )
            labels = dict(VoucherState.choices)
            preview = {
                "range": span.label,
                "batch": span.batch,
                "counts": [(labels[s], by_state.get(s, 0)) for s in STATE_COUNTS],
            }
        context = {
            **self.admin_site.each_context(request),
            "title": _("Block vouchers by serial range"),
            "opts": self.opts,
            "form": form,
            "preview": preview,
        }
        return TemplateResponse(request, "admin/vouchers/block_range.html", context)


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdmin):
    list_display = ("serial", "batch", "state", "expires_at", "redeemed_at", "line", "order")
    list_filter = ("state", "batch__currency", "batch")
    # By serial only: the PIN is never searchable (only its HMAC is stored).
    search_fields = ("serial",)
    list_select_related = ("batch", "line__phone_number", "order")
    exclude = ("pin_hash",)
    actions = ["block_vouchers"]

    def has_voucher_permission(self, request: HttpRequest) -> bool:
        return _can_change(request)

    @admin.action(description=_("Block selected vouchers"), permissions=["voucher"])
    def block_vouchers(
        self, request: HttpRequest, queryset: QuerySet[Voucher]
    ) -> TemplateResponse | None:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        vouchers = list(queryset.select_related("batch").order_by("batch_id", "number"))
        if form.is_bound and form.is_valid():
            blocked = 0
            for voucher in vouchers:
                span = SerialRange(voucher.batch, voucher.number, voucher.number)
                try:
                    result = do_block_vouchers(
                        span,
                        reason=form.cleaned_data["reason"],
                        actor=staff_actor(request),
                        now=clock.now(),
                    )
                except (ValidationError, LedgerError) as exc:
                    self.message_user(
                        request, f"{voucher.serial}: {error_text(exc)}", messages.ERROR
                    )
                    continue
                blocked += result.blocked
            self.message_user(
                request,
                ngettext("Blocked %(count)d voucher.", "Blocked %(count)d vouchers.", blocked)
                % {"count": blocked},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Block vouchers"),
            "opts": self.opts,
            "explanation": _(
                "Blocked vouchers can never be redeemed. Redeemed and expired ones are "
                "left as they are; the value of active ones goes back to the distributor."
            ),
            "button": _("Block"),
            "action": "block_vouchers",
            "queryset": vouchers,
            "rows": [f"{v.serial} · {v.get_state_display()}" for v in vouchers],
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/confirm_action.html", context)
