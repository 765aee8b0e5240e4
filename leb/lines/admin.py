"""Back office for lines, numbers and policies.

Lines change only through actions (activation, top-ups, the sweep), so their
pages are read-only; staff act on them through admin actions, each of which
calls the same action every channel uses. The manual top-up page is added by
the top-ups admin, which owns top-ups.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from leb.audit.actions import record
from leb.audit.audited_admin import AuditedAdmin
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.admin import (
    ActionAdmin,
    ActionCheckedForm,
    FilterErrorsMixin,
    ReadOnlyAdmin,
    ReadOnlyMixin,
    error_text,
    form_fields,
    format_money,
    format_when,
    staff_actor,
    validate_currency,
)

from . import lifecycle
from .actions import (
    POLICY_FIELDS,
    LineError,
    check_policy,
    check_real_name,
    check_reminder_offsets,
    do_activate_line,
    do_add_phone_number,
    do_create_policy,
    do_register_real_name,
    do_update_policy,
)
from .identifiers import format_msisdn, normalize_msisdn
from .import_admin import LineImportMixin
from .models import (
    Line,
    LineEvent,
    LineStatus,
    NumberPolicy,
    PhoneNumber,
    RealNameRegistration,
)

RECENT_EVENTS = 25
RECENT_ORDERS = 10


# --- Policies -------------------------------------------------------------------


class NumberPolicyForm(ActionCheckedForm):
    # The model and fields come from the admin's fieldsets.
    def clean_reminder_offsets(self) -> list[int]:
        try:
            return check_reminder_offsets(self.cleaned_data.get("reminder_offsets"))
        except LineError as exc:
            raise ValidationError(exc.message_dict["reminder_offsets"]) from exc

    def check(self, instance: NumberPolicy) -> None:
        # What do_create_policy / do_update_policy would refuse, said on the form.
        check_policy(instance)


@admin.register(NumberPolicy)
class NumberPolicyAdmin(ActionAdmin):
    """Policies are edited through do_create_policy / do_update_policy: a
    change of timers moves the dates of the policy's lines in the same
    transaction, and says how many moved."""

    form = NumberPolicyForm
    list_display = (
        "code",
        "name",
        "first_topup_days",
        "grace_days",
        "suspension_days",
        "quarantine_days",
        "max_validity_days",
        "extension_rule",
        "lost_after",
    )
    list_filter = ("extension_rule",)
    search_fields = ("code", "name")
    fieldsets = (
        (None, {"fields": ("code", "name")}),
        (
            _("Timers"),
            {
                "fields": (
                    "first_topup_days",
                    "grace_days",
                    "suspension_days",
                    "quarantine_days",
                    "max_validity_days",
                    "extension_rule",
                    "number_prefix",
                    "reminder_offsets",
                )
            },
        ),
        (
            _("Money"),
            {"fields": ("restore_fee", "forfeit_balance_at_termination", "refund_validity_rule")},
        ),
        (_("Registration"), {"fields": ("requires_real_name",)}),
    )

    @admin.display(description=_("number lost (days after expiry)"))
    def lost_after(self, policy: NumberPolicy) -> int:
        return policy.grace_days + policy.suspension_days

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        actor = staff_actor(request)
        if not change:
            saved = do_create_policy(
                form_fields(form, POLICY_FIELDS, changed_only=False), actor=actor
            )
            obj.pk = saved.pk
            return
        saved, moved = do_update_policy(
            obj, form_fields(form, POLICY_FIELDS, changed_only=True), actor=actor
        )
        obj.pk = saved.pk
        if moved.lines or moved.numbers:
            self.message_user(
                request,
                _(
                    "The new timers apply to the lines already counting down: "
                    "%(lines)s rescheduled, %(numbers)s in quarantine."
                )
                % {
                    "lines": ngettext("%(count)d line", "%(count)d lines", moved.lines)
                    % {"count": moved.lines},
                    "numbers": ngettext("%(count)d number", "%(count)d numbers", moved.numbers)
                    % {"count": moved.numbers},
                },
                messages.INFO,
            )


# --- Phone numbers ----------------------------------------------------------------


class PhoneNumberForm(forms.ModelForm):
    class Meta:
        model = PhoneNumber
        fields = ("msisdn",)

    def clean_msisdn(self) -> str:
        msisdn = normalize_msisdn(self.cleaned_data["msisdn"])
        if PhoneNumber.objects.filter(msisdn=msisdn).exists():
            raise ValidationError(
                _("Number %(msisdn)s is already in the pool.") % {"msisdn": msisdn}
            )
        return msisdn


def search_msisdn(term: str) -> str:
    """The E.164 form of what staff typed, or "" when it is not a number."""
    try:
        return normalize_msisdn(term)
    except ValidationError:
        return ""


@admin.register(PhoneNumber)
class PhoneNumberAdmin(ActionAdmin):
    form = PhoneNumberForm
    list_display = ("msisdn", "formatted", "status", "quarantined_until", "updated_at")
    list_filter = ("status",)
    search_fields = ("msisdn",)
    fields = ("msisdn", "formatted", "status", "quarantined_until", "updated_at", "lines_display")
    readonly_fields = ("formatted", "status", "quarantined_until", "updated_at", "lines_display")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A new number only needs its digits; it joins the pool as available.
        return ("msisdn",) if obj is None else self.fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Status moves with the lines (assign, quarantine, release), never by hand.
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        saved = do_add_phone_number(form.cleaned_data["msisdn"], actor=staff_actor(request))
        obj.pk = saved.pk

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, duplicates = super().get_search_results(request, queryset, search_term)
        e164 = search_msisdn(search_term)
        if e164:
            results = results | queryset.filter(msisdn=e164)
        return results, duplicates

    @admin.display(description=_("number"))
    def formatted(self, number: PhoneNumber) -> str:
        return format_msisdn(number.msisdn)

    @admin.display(description=_("lines"))
    def lines_display(self, number: PhoneNumber) -> SafeString | str:
        lines = list(number.lines.order_by("-pk")[:10])
        if not lines:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            (
                (
                    reverse("admin:lines_line_change", args=[line.pk]),
                    line.iccid,
                    line.get_status_display(),
                )
                for line in lines
            ),
        )


# --- Lines ----------------------------------------------------------------------

_TIMELINE_WORDS = {
    ("grace_from", True): _("Validity ended on %(date)s; the line can only receive since then."),
    ("grace_from", False): _("Validity ends on %(date)s; after that the line can only receive."),
    ("suspended_from", True): _("Barred (suspended) since %(date)s"),
    ("suspended_from", False): _("Barred (suspended) from %(date)s unless topped up."),
    ("number_lost", True): _("Terminated on %(date)s: the number was lost."),
    ("number_lost", False): _("Terminated on %(date)s unless topped up: the number is lost."),
    ("number_released", True): _("The number went back to the pool on %(date)s"),
    ("number_released", False): _("The number goes back to the pool on %(date)s"),
}


def timeline_sentences(line: Line, now: datetime) -> list[tuple[str, bool]]:
    """(sentence, is_past) for a line's dates, oldest first, in plain words."""
    if line.status == LineStatus.INVENTORY or line.valid_until is None:
        return [
            (
                str(
                    _(
                        "Not activated yet. Activation gives %(days)d days until the first top-up "
                        "is needed."
                    )
                    % {"days": line.policy.first_topup_days}
                ),
                False,
            )
        ]
    sentences: list[tuple[str, bool]] = []
    if line.activated_at:
        sentences.append(
            (str(_("Activated on %(date)s") % {"date": format_when(line.activated_at)}), True)
        )
    for entry in lifecycle.timeline(line, now):
        text = _TIMELINE_WORDS[(entry.event, entry.is_past)] % {"date": format_when(entry.at)}
        if entry.is_past:
            relative = _("%(time)s ago") % {"time": timesince(entry.at, now, depth=1)}
        else:
            relative = _("in %(time)s") % {"time": timeuntil(entry.at, now, depth=1)}
        sentences.append((f"{text} ({relative})", entry.is_past))
    if line.status != LineStatus.TERMINATED and line.policy.forfeit_balance_at_termination:
        sentences.append((str(_("Any balance left at termination is forfeited.")), False))
    return sentences


def status_label(value: str) -> str:
    return str(LineStatus(value).label) if value in LineStatus.values else value


def status_change(event: LineEvent) -> str:
    if not event.to_status:
        return ""
    if not event.from_status:
        return status_label(event.to_status)
    return f"{status_label(event.from_status)} → {status_label(event.to_status)}"


class LineEventInline(ReadOnlyMixin, admin.TabularInline):
    model = LineEvent
    extra = 0
    can_delete = False
    fields = ("happened_at", "kind", "change", "valid_until", "actor", "details")
    readonly_fields = fields
    ordering = ("-happened_at", "-pk")
    verbose_name_plural = _("recent events")

    def get_queryset(self, request: HttpRequest) -> QuerySet[LineEvent]:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        object_id = match.kwargs.get("object_id") if match else None
        if object_id and str(unquote(object_id)).isdigit():
            # A long-lived line has hundreds of events; the page shows the latest.
            recent = LineEvent.objects.filter(line_id=int(unquote(object_id))).order_by(
                "-happened_at", "-pk"
            )
            queryset = queryset.filter(
                pk__in=list(recent.values_list("pk", flat=True)[:RECENT_EVENTS])
            )
        return queryset.order_by("-happened_at", "-pk")

    @admin.display(description=_("status change"))
    def change(self, event: LineEvent) -> str:
        return status_change(event)

    @admin.display(description=_("details"))
    def details(self, event: LineEvent) -> str:
        if not event.data:
            return ""
        return json.dumps(event.data, ensure_ascii=False, sort_keys=True)


@admin.register(Line)
class LineAdmin(LineImportMixin, FilterErrorsMixin, admin.ModelAdmin):
    list_display = (
        "iccid",
        "number",
        "policy",
        "currency",
        "status",
        "effective_status",
        "valid_until",
        "balance",
        "owner",
    )
    list_filter = ("status", "policy", "currency", ("terminated_at", admin.DateFieldListFilter))
    list_select_related = ("policy", "phone_number", "owner", "wallet")
    search_fields = ("iccid", "phone_number__msisdn", "owner__username", "owner__email")
    date_hierarchy = "valid_until"
    actions = ["activate_lines"]
    inlines = [LineEventInline]
    readonly_fields = (
        "number",
        "effective_status",
        "balance",
        "timeline_display",
        "recent_orders",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "iccid",
                    "number",
                    "policy",
                    "currency",
                    "owner",
                    "effective_status",
                    "balance",
                )
            },
        ),
        (_("Timeline"), {"fields": ("timeline_display",)}),
        (_("Recent top-ups"), {"fields": ("recent_orders",)}),
        (
            _("Dates"),
            {
                "fields": (
                    "activated_at",
                    "valid_until",
                    "next_transition_at",
                    "terminated_at",
                    "created_at",
                )
            },
        ),
        (
            _("eSIM"),
            {"fields": ("eid", "activation_code", "installed_at"), "classes": ("collapse",)},
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Line]:
        return (
            super()
            .get_queryset(request)
            .select_related("policy", "phone_number", "owner", "wallet")
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # New lines come from stock imports (do_create_line), which check identifiers.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("lines.change_line")

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="lines_line_import",
            ),
            path(
                "import/confirm/",
                self.admin_site.admin_view(self.import_confirm_view),
                name="lines_line_import_confirm",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "can_import": self.has_import_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        results, duplicates = super().get_search_results(request, queryset, search_term)
        # Staff paste numbers and ICCIDs as printed: "+852 9123 4567", "8985 2000 ...".
        e164 = search_msisdn(search_term)
        if e164:
            results = results | queryset.filter(phone_number__msisdn=e164)
        compact = re.sub(r"[\s\-.]", "", search_term)
        if compact.isdigit() and len(compact) >= 6 and compact != search_term.strip():
            results = results | queryset.filter(iccid__startswith=compact)
        return results, duplicates

    # --- columns and read-only fields

    @admin.display(description=_("number"), ordering="phone_number__msisdn")
    def number(self, line: Line) -> str:
        return format_msisdn(line.msisdn) if line.phone_number_id else "-"

    @admin.display(description=_("status now"))
    def effective_status(self, line: Line) -> str:
        now_status = lifecycle.effective_status(line, clock.now())
        label = str(LineStatus(now_status).label)
        if now_status != line.status:
            return str(
                _("%(now)s (recorded as %(stored)s until the next sweep)")
                % {"now": label, "stored": line.get_status_display()}
            )
        return label

    @admin.display(description=_("balance"))
    def balance(self, line: Line) -> str:
        return format_money(line.wallet.balance if line.wallet else 0, line.currency)

    @admin.display(description=_("what happens if nobody tops up"))
    def timeline_display(self, line: Line) -> SafeString:
        items = timeline_sentences(line, clock.now())
        return format_html(
            '<ol class="leb-timeline">{}</ol>',
            format_html_join(
                "",
                '<li class="{}">{}</li>',
                (("past" if past else "future", text) for text, past in items),
            ),
        )

    @admin.display(description=_("top-ups"))
    def recent_orders(self, line: Line) -> SafeString | str:
        if not line.pk:
            return "-"
        orders = list(
            line.orders.select_related("plan").order_by("-created_at", "-pk")[:RECENT_ORDERS]
        )
        if not orders:
            return str(_("No top-ups yet."))
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:topups_topuporder_change", args=[order.pk]),
                    order.receipt_number or str(order.public_id)[:8],
                    format_when(order.created_at),
                    order.get_channel_display(),
                    order.plan or _("free amount"),
                    format_money(order.price, order.currency),
                    order.get_status_display(),
                )
                for order in orders
            ),
        )
        all_url = reverse("admin:topups_topuporder_changelist") + f"?line__id__exact={line.pk}"
        return format_html(
            '<table class="leb-orders"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}">{}</a></p>',
            _("receipt"),
            _("created"),
            _("channel"),
            _("plan"),
            _("price"),
            _("status"),
            rows,
            all_url,
            _("All top-ups of this line"),
        )

    # --- staff actions

    @admin.action(description=_("Activate selected lines"), permissions=["activate"])
    def activate_lines(self, request: HttpRequest, queryset: QuerySet[Line]) -> None:
        actor = staff_actor(request)
        activated = 0
        for line in queryset.order_by("pk"):
            try:
                with transaction.atomic():
                    do_activate_line(line, actor=actor)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("%(iccid)s: %(error)s") % {"iccid": line.iccid, "error": error_text(exc)},
                    messages.ERROR,
                )
            else:
                activated += 1
        if activated:
            self.message_user(
                request,
                ngettext("Activated %(count)d line.", "Activated %(count)d lines.", activated)
                % {"count": activated},
                messages.SUCCESS,
            )


@admin.register(LineEvent)
class LineEventAdmin(ReadOnlyAdmin):
    list_display = ("happened_at", "line", "kind", "change", "valid_until", "actor")
    list_filter = ("kind", "to_status")
    list_select_related = ("line__phone_number",)
    search_fields = ("line__iccid", "line__phone_number__msisdn", "actor")
    date_hierarchy = "happened_at"
    raw_id_fields = ("line",)

    @admin.display(description=_("status change"))
    def change(self, event: LineEvent) -> str:
        return status_change(event)


__all__ = [
    "AuditedAdmin",
    "ReadOnlyAdmin",
    "error_text",
    "format_money",
    "format_when",
    "staff_actor",
    "validate_currency",
]


# --- Real-name registration ---------------------------------------------------------


class RealNameForm(forms.ModelForm):
    """Staff type the document number; only its fingerprint and last four
    characters are kept (do_register_real_name)."""

    line_iccid = forms.CharField(label=_("line ICCID"), max_length=32)
    document_number = forms.CharField(
        label=_("document number"), max_length=40, widget=forms.PasswordInput(render_value=False)
    )

    class Meta:
        model = RealNameRegistration
        fields = ("full_name", "document_type")

    def clean_line_iccid(self) -> Line:
        from .identifiers import normalize_iccid

        iccid = normalize_iccid(self.cleaned_data["line_iccid"])
        line = Line.objects.select_related("policy").filter(iccid=iccid).first()
        if line is None:
            raise ValidationError(_("No line has this ICCID."))
        return line

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        line = cleaned.get("line_iccid")
        if isinstance(line, Line) and "document_number" in cleaned:
            try:
                check_real_name(
                    line,
                    full_name=cleaned.get("full_name", ""),
                    document_type=cleaned.get("document_type", ""),
                    document_number=cleaned["document_number"],
                )
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return cleaned


@admin.register(RealNameRegistration)
class RealNameRegistrationAdmin(admin.ModelAdmin):
    """Identity data: seen only with the view permission, and every look is audited."""

    list_display = ("line", "full_name", "document_type", "masked_number", "registered_at")
    list_filter = ("document_type",)
    search_fields = ("line__iccid", "line__phone_number__msisdn")
    list_select_related = ("line__phone_number",)
    readonly_fields = (
        "line",
        "full_name",
        "document_type",
        "masked_number",
        "registered_at",
        "registered_by",
    )
    fields = readonly_fields

    @admin.display(description=_("document number"))
    def masked_number(self, registration: RealNameRegistration) -> str:
        return f"****{registration.document_last4}"

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = RealNameForm
            kwargs["fields"] = ("full_name", "document_type")
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("line_iccid", "full_name", "document_type", "document_number")
        return self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        if getattr(response, "status_code", 0) == 200:
            record(staff_actor(request), AuditAction.REAL_NAME_LIST, "real_name:*", {})
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        if getattr(response, "status_code", 0) == 200:
            record(
                staff_actor(request),
                AuditAction.REAL_NAME_VIEW,
                f"real_name:{unquote(object_id)}",
                {},
            )
        return response

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        registration = do_register_real_name(
            form.cleaned_data["line_iccid"],
            full_name=form.cleaned_data["full_name"],
            document_type=form.cleaned_data["document_type"],
            document_number=form.cleaned_data["document_number"],
            actor=staff_actor(request),
        )
        obj.pk = registration.pk
        obj.line = registration.line

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        return None
