from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common.admin import (
    FilterErrorsMixin,
    ReadOnlyMixin,
    error_text,
    format_money,
    format_when,
)
from leb.common.money import parse_amount
from leb.payments.actions import refundable, refunded_attempt
from leb.payments.models import Refund, RefundStatus
from leb.topups.models import TopUpOrder

from .actions import (
    MAX_BODY,
    can_refund_disputes,
    do_close,
    do_close_dispute,
    do_escalate_ticket,
    do_refund_dispute,
    do_reject_dispute,
    do_reply,
    do_retry_dispute_refund,
    staff_actor,
)
from .models import (
    Dispute,
    DisputeEvent,
    DisputeEventKind,
    DisputeStatus,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from .queries import disputable_orders


class TicketMessageInline(ReadOnlyMixin, admin.TabularInline):
    model = TicketMessage
    fields = ("created_at", "from_staff", "author", "body")
    readonly_fields = fields
    extra = 0
    can_delete = False


class TicketAdminForm(forms.ModelForm):
    # Not model fields: what staff write here goes through do_reply / do_close.
    reply = forms.CharField(
        label=_("Reply to the customer"),
        required=False,
        max_length=MAX_BODY,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text=_(
            "Saved as a staff message, marks the ticket answered and emails the customer "
            "in the ticket's language."
        ),
    )
    close = forms.BooleanField(label=_("Close the ticket"), required=False)

    class Meta:
        model = Ticket
        fields = ("category",)


@admin.register(Ticket)
class TicketAdmin(FilterErrorsMixin, admin.ModelAdmin):
    form = TicketAdminForm
    list_display = ("subject", "category", "status", "who", "line", "created_at", "updated_at")
    list_filter = ("status", "category")
    search_fields = (
        "subject",
        "contact_email",
        "contact_phone",
        "user__email",
        "user__username",
        "line__phone_number__msisdn",
        "line__iccid",
    )
    list_select_related = ("user", "line__phone_number")
    date_hierarchy = "created_at"
    ordering = ("-updated_at",)
    inlines = (TicketMessageInline,)
    readonly_fields = (
        "public_id",
        "status",
        "user",
        "contact_email",
        "contact_phone",
        "language",
        "subject",
        "line",
        "order",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "public_id",
                    "subject",
                    "category",
                    "status",
                    "user",
                    "contact_email",
                    "contact_phone",
                    "language",
                    "line",
                    "order",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (_("Answer"), {"fields": ("reply", "close")}),
    )
    actions = ("close_tickets",)
    change_form_template = "admin/support/ticket/change_form.html"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        ticket = self.get_object(request, unquote(object_id))
        dispute = Dispute.objects.filter(ticket=ticket).first() if ticket is not None else None
        extra = {
            **(extra_context or {}),
            "dispute": dispute,
            "can_escalate": dispute is None and request.user.has_perm("support.add_dispute"),
        }
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/escalate/",
                self.admin_site.admin_view(self.escalate_view),
                name="support_ticket_escalate",
            ),
            *super().get_urls(),
        ]

    def escalate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        ticket = self.get_object(request, unquote(object_id))
        if ticket is None:
            raise Http404(_("No ticket has this ID."))
        if not (
            self.has_view_permission(request, ticket)
            and request.user.has_perm("support.add_dispute")
        ):
            raise PermissionDenied
        back = reverse("admin:support_ticket_change", args=[ticket.pk])
        existing = Dispute.objects.filter(ticket=ticket).first()
        if existing is not None:
            messages.info(request, _("This ticket has already been escalated to a dispute."))
            return HttpResponseRedirect(reverse("admin:support_dispute_change", args=[existing.pk]))
        form = EscalateForm(request.POST if request.method == "POST" else None, ticket=ticket)
        status = 200
        if request.method == "POST":
            status = 400
            if form.is_valid():
                order = form.cleaned_data["order"]
                amount = _amount(form, "amount", order.currency)
                if not form.errors:
                    try:
                        dispute = do_escalate_ticket(
                            ticket,
                            order=order,
                            amount_requested=amount,
                            reason=form.cleaned_data["reason"],
                            staff=request.user,
                        )
                    except ValidationError as exc:
                        form.add_error(None, exc)
                    else:
                        messages.success(request, _("The ticket is now a dispute."))
                        return HttpResponseRedirect(
                            reverse("admin:support_dispute_change", args=[dispute.pk])
                        )
        facts = [
            (_("ticket"), str(ticket)),
            (_("customer"), self.who(ticket)),
            (_("line"), str(ticket.line or "-")),
        ]
        return _dispute_page(
            request,
            self,
            title=_("Escalate to dispute"),
            back_url=back,
            facts=facts,
            form=form,
            submit=_("Escalate to dispute"),
            status=status,
        )

    @admin.display(description=_("customer"))
    def who(self, obj: Ticket) -> str:
        if obj.user is not None:
            return str(obj.user.email or obj.user.get_username())
        return obj.contact_email or obj.contact_phone

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tickets come from customers; staff answer them.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        reply = form.cleaned_data.get("reply", "").strip()
        with transaction.atomic():
            if "category" in form.changed_data:
                # Only the field staff may edit: status moves through the actions.
                obj.save(update_fields=["category"])
                record(
                    staff_actor(request.user),
                    AuditAction.TICKET_CHANGE,
                    f"ticket:{obj.pk}",
                    {"category": obj.category},
                )
            if reply:
                try:
                    do_reply(obj, body=reply, author=request.user, as_staff=True)
                except ValidationError as exc:
                    messages.error(request, " ".join(exc.messages))
                else:
                    messages.success(request, _("Reply saved; the customer is notified."))
            if form.cleaned_data.get("close"):
                do_close(obj, actor=staff_actor(request.user))

    @admin.action(description=_("Close selected tickets"))
    def close_tickets(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        count = 0
        for ticket in queryset.exclude(status=TicketStatus.CLOSED):
            do_close(ticket, actor=staff_actor(request.user))
            count += 1
        self.message_user(request, _("Tickets closed: %(count)d") % {"count": count})


# --- Disputes ------------------------------------------------------------------------


def _order_choice(order: TopUpOrder) -> str:
    reference = order.receipt_number or str(order.public_id)[:8].upper()
    price = format_money(order.price, order.currency)
    return f"{reference} · {price} · {format_when(order.fulfilled_at)}"


class OrderChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return _order_choice(obj)


def _amount(form: forms.Form, field: str, currency: str) -> int | None:
    raw = str(form.cleaned_data.get(field) or "").strip()
    if not raw:
        return None
    try:
        return parse_amount(raw, currency)
    except ValidationError as exc:
        form.add_error(field, exc)
        return None


class EscalateForm(forms.Form):
    order = OrderChoiceField(
        label=_("Top-up disputed"),
        queryset=TopUpOrder.objects.none(),
        empty_label=None,
        help_text=_("The subscriber's completed top-ups, newest first."),
    )
    amount = forms.CharField(
        label=_("Amount asked back"),
        required=False,
        max_length=20,
        help_text=_("In the order's currency, e.g. 20 or 20.50. Blank: the whole price."),
    )
    reason = forms.CharField(
        label=_("What the subscriber disputes"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        orders = self.fields["order"]
        assert isinstance(orders, forms.ModelChoiceField)
        orders.queryset = disputable_orders(ticket)


class DisputeRefundForm(forms.Form):
    amount = forms.CharField(
        label=_("Amount to refund"),
        required=False,
        max_length=20,
        help_text=_("Blank: all that is left of the payment."),
    )


class DisputeNoteForm(forms.Form):
    note = forms.CharField(
        label=_("Note to the subscriber"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=_("Shown to the subscriber in their ticket."),
    )

    def __init__(self, *args: Any, required: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["note"].required = required


def _dispute_page(
    request: HttpRequest,
    model_admin: admin.ModelAdmin[Any],
    *,
    title: Any,
    back_url: str,
    facts: list[tuple[Any, Any]],
    form: forms.Form | None,
    submit: Any,
    status: int = 200,
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "facts": facts,
        "form": form,
        "submit": submit,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/support/dispute_form.html", context, status=status)


class DisputeEventInline(ReadOnlyMixin, admin.TabularInline):
    model = DisputeEvent
    fields = ("created_at", "kind", "amount_display", "provider", "note", "actor")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("amount"))
    def amount_display(self, event: DisputeEvent) -> str:
        return format_money(event.amount, event.currency)


@admin.register(Dispute)
class DisputeAdmin(FilterErrorsMixin, admin.ModelAdmin):
    list_display = (
        "reference_display",
        "status",
        "order",
        "amount_display",
        "ticket",
        "created_at",
        "updated_at",
    )
    list_filter = ("status",)
    search_fields = ("=public_id", "=order__public_id", "order__receipt_number", "ticket__subject")
    list_select_related = ("order", "ticket")
    ordering = ("-updated_at",)

    @admin.display(description=_("reference"), ordering="public_id")
    def reference_display(self, dispute: Dispute) -> str:
        return dispute.reference

    inlines = (DisputeEventInline,)
    fields = (
        "public_id",
        "status",
        "ticket_link",
        "order_link",
        "amount_display",
        "refunds_display",
        "reason",
        "opened_by",
        "decision_note",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    change_form_template = "admin/support/dispute/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Disputes come from tickets ("Escalate to dispute").
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/refund/", view(self.refund_view), name="support_dispute_refund"),
            path("<path:object_id>/reject/", view(self.reject_view), name="support_dispute_reject"),
            path("<path:object_id>/close/", view(self.close_view), name="support_dispute_close"),
            path(
                "<path:object_id>/retry/<int:refund_id>/",
                view(self.retry_view),
                name="support_dispute_retry",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("amount asked back"))
    def amount_display(self, dispute: Dispute) -> str:
        return format_money(dispute.amount_requested, dispute.currency)

    @admin.display(description=_("ticket"))
    def ticket_link(self, dispute: Dispute) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:support_ticket_change", args=[dispute.ticket_id]),
            dispute.ticket,
        )

    @admin.display(description=_("top-up order"))
    def order_link(self, dispute: Dispute) -> SafeString:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:topups_topuporder_change", args=[dispute.order_id]),
            _order_choice(dispute.order),
        )

    @admin.display(description=_("refunds"))
    def refunds_display(self, dispute: Dispute) -> SafeString | str:
        refunds = list(
            Refund.objects.filter(
                dispute_events__dispute=dispute,
                dispute_events__kind=DisputeEventKind.REFUND_REQUESTED,
            ).order_by("created_at", "pk")
        )
        if not refunds:
            return "-"
        rows = []
        for refund in refunds:
            retry = ""
            if refund.is_retryable:
                retry = format_html(
                    '<a class="button" href="{}">{}</a>',
                    reverse("admin:support_dispute_retry", args=[dispute.pk, refund.pk]),
                    _("Ask the provider again"),
                )
            rows.append(
                (
                    format_money(refund.amount, refund.currency),
                    refund.get_status_display(),
                    refund.provider_reference or "-",
                    refund.idempotency_key,
                    refund.failure_message or "-",
                    retry,
                )
            )
        head = format_html_join(
            "",
            "<th>{}</th>",
            [
                (label,)
                for label in (
                    _("amount"),
                    _("status"),
                    _("provider reference"),
                    _("idempotency key"),
                    _("failure"),
                    "",
                )
            ],
        )
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            '<table class="leb-refunds"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            body,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        dispute = self.get_object(request, unquote(object_id))
        # Nothing on the page is edited here: every change is one of the tools.
        extra = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        if dispute is not None:
            extra.update(self._tools(request, dispute))
        return super().change_view(request, object_id, form_url, extra)

    def _tools(self, request: HttpRequest, dispute: Dispute) -> dict[str, bool]:
        user: Any = request.user
        may_decide = user.has_perm("support.change_dispute")
        return {
            "can_refund": can_refund_disputes(user)
            and dispute.status
            in (DisputeStatus.OPEN, DisputeStatus.REFUND_REQUESTED, DisputeStatus.REFUNDED),
            "can_reject": may_decide and dispute.status == DisputeStatus.OPEN,
            "can_close": may_decide
            and dispute.status
            in (DisputeStatus.OPEN, DisputeStatus.REFUNDED, DisputeStatus.REJECTED),
        }

    def _dispute_or_404(self, request: HttpRequest, object_id: str) -> Dispute:
        dispute = self.get_object(request, unquote(object_id))
        if dispute is None:
            raise Http404(_("No dispute has this ID."))
        if not self.has_view_permission(request, dispute):
            raise PermissionDenied
        return dispute

    def _facts(self, dispute: Dispute) -> list[tuple[Any, Any]]:
        attempt = refunded_attempt(dispute.order)
        left = refundable(attempt) if attempt is not None else 0
        return [
            (_("dispute"), str(dispute)),
            (_("top-up order"), _order_choice(dispute.order)),
            (_("amount asked back"), self.amount_display(dispute)),
            (_("left to refund"), format_money(left, dispute.currency)),
            (_("paid with"), attempt.provider if attempt else "-"),
        ]

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        dispute = self._dispute_or_404(request, object_id)
        if not can_refund_disputes(request.user):
            raise PermissionDenied
        back = reverse("admin:support_dispute_change", args=[dispute.pk])
        form = DisputeRefundForm(request.POST if request.method == "POST" else None)
        status = 200
        if request.method == "POST":
            status = 400
            if form.is_valid():
                amount = _amount(form, "amount", dispute.currency)
                if not form.errors:
                    try:
                        refund = do_refund_dispute(dispute, staff=request.user, amount=amount)
                    except ValidationError as exc:
                        form.add_error(None, exc)
                    else:
                        self._say_refund(request, refund)
                        return HttpResponseRedirect(back)
        return _dispute_page(
            request,
            self,
            title=_("Refund the dispute"),
            back_url=back,
            facts=self._facts(dispute),
            form=form,
            submit=_("Refund"),
            status=status,
        )

    def _say_refund(self, request: HttpRequest, refund: Refund) -> None:
        amount = format_money(refund.amount, refund.currency)
        if refund.status == RefundStatus.CONFIRMED:
            messages.success(
                request, _("Refund of %(amount)s confirmed by the provider.") % {"amount": amount}
            )
        elif refund.status == RefundStatus.REQUESTED:
            messages.info(
                request,
                _("Refund of %(amount)s requested; the provider will confirm it.")
                % {"amount": amount},
            )
        else:
            messages.error(
                request,
                _(
                    "Refund of %(amount)s failed at the provider: %(error)s The books are "
                    "reversed and the order is due a refund; ask the provider again below."
                )
                % {"amount": amount, "error": refund.failure_message},
            )

    def retry_view(self, request: HttpRequest, object_id: str, refund_id: int) -> HttpResponse:
        dispute = self._dispute_or_404(request, object_id)
        if not can_refund_disputes(request.user):
            raise PermissionDenied
        refund = Refund.objects.filter(pk=refund_id).first()
        if refund is None:
            raise Http404(_("No refund has this ID."))
        back = reverse("admin:support_dispute_change", args=[dispute.pk])
        error = ""
        if request.method == "POST":
            try:
                refund = do_retry_dispute_refund(dispute, refund, staff=request.user)
            except ValidationError as exc:
                error = error_text(exc)
            else:
                self._say_refund(request, refund)
                return HttpResponseRedirect(back)
        form = forms.Form()
        if error:
            form.add_error(None, error)
        return _dispute_page(
            request,
            self,
            title=_("Ask the provider again"),
            back_url=back,
            facts=[
                *self._facts(dispute),
                (_("refund"), format_money(refund.amount, refund.currency)),
                (_("idempotency key"), refund.idempotency_key),
            ],
            form=form,
            submit=_("Ask the provider again"),
            status=400 if error else 200,
        )

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_view(request, object_id, reject=True)

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._decide_view(request, object_id, reject=False)

    def _decide_view(self, request: HttpRequest, object_id: str, *, reject: bool) -> HttpResponse:
        dispute = self._dispute_or_404(request, object_id)
        if not request.user.has_perm("support.change_dispute"):
            raise PermissionDenied
        back = reverse("admin:support_dispute_change", args=[dispute.pk])
        form = DisputeNoteForm(request.POST if request.method == "POST" else None, required=reject)
        status = 200
        if request.method == "POST":
            status = 400
            if form.is_valid():
                note = form.cleaned_data["note"]
                try:
                    if reject:
                        do_reject_dispute(dispute, note=note, staff=request.user)
                    else:
                        do_close_dispute(dispute, note=note, staff=request.user)
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    messages.success(
                        request,
                        _("The dispute is rejected.") if reject else _("The dispute is closed."),
                    )
                    return HttpResponseRedirect(back)
        return _dispute_page(
            request,
            self,
            title=_("Reject the dispute") if reject else _("Close the dispute"),
            back_url=back,
            facts=self._facts(dispute),
            form=form,
            submit=_("Reject") if reject else _("Close"),
            status=status,
        )
