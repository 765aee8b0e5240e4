"""Back office for agents: terms and limits, status, API keys (the secret is
shown once, on creation), deposits with two-person approval, and the agent
top-ups with their staff reversal. Every change goes through an action that
writes the audit row."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from leb.audit.actions import record
from leb.audit.audited_admin import AuditedAdmin
from leb.audit.models import AuditAction
from leb.common import clock
from leb.common.admin import ReadOnlyAdmin, ReadOnlyMixin, error_text, format_money, staff_actor
from leb.ledger.actions import LedgerError

from . import queries
from .actions import (
    clean_callback_url,
    do_approve_deposit,
    do_create_api_key,
    do_record_deposit,
    do_reject_deposit,
    do_reverse_agent_topup,
    do_revoke_api_key,
    do_rotate_api_key,
    do_set_agent_status,
    float_account,
    lock_agent,
    new_agent_code,
)
from .admin_reports import SalesReportViews, can_view_sales
from .models import (
    Agent,
    AgentApiKey,
    AgentChannel,
    AgentDeposit,
    AgentMember,
    AgentPlanDiscount,
    AgentStatus,
    AgentTopUp,
    DepositStatus,
)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=200, label=_("Reason"), help_text=_("Kept in the audit log.")
    )


def _confirm(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    action: str,
    title: Any,
    explanation: Any,
    button: Any,
    form: forms.Form,
) -> TemplateResponse:
    objects = list(queryset.order_by("pk"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "explanation": explanation,
        "button": button,
        "action": action,
        "queryset": objects,
        "rows": [str(obj) for obj in objects],
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


class PlanDiscountInline(admin.TabularInline):
    model = AgentPlanDiscount
    extra = 0


class ChannelInline(admin.TabularInline):
    """The official shop addresses, handles and numbers the public check shows."""

    model = AgentChannel
    extra = 0


class MemberInline(admin.TabularInline):
    """Who may sign in to the agent portal for this agent, and as what."""

    model = AgentMember
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


class ApiKeyInline(ReadOnlyMixin, admin.TabularInline):
    model = AgentApiKey
    fields = ("key_id", "label", "created_at", "valid_until", "revoked_at", "last_used_at")
    readonly_fields = fields
    extra = 0


class AgentForm(ModelForm):
    callback_url = forms.URLField(
        label=_("callback URL"), required=False, max_length=200, assume_scheme="https"
    )

    class Meta:
        model = Agent
        fields = (
            "legal_name",
            "display_name",
            "contact_email",
            "contact_phone",
            "region",
            "currency",
            "allowed_plan_codes",
            "max_transaction_amount",
            "daily_count_limit",
            "daily_amount_limit",
            "discount_percent",
            "callback_url",
        )

    def clean_callback_url(self) -> str:
        # The portal's rule too: https, and a host with public addresses only.
        return clean_callback_url(self.cleaned_data.get("callback_url") or "")


@admin.register(Agent)
class AgentAdmin(AuditedAdmin):
    list_display = ("code", "display_name", "region", "currency", "status", "float_display")

    def get_list_display(self, request: HttpRequest) -> Any:
        # The monthly statement needs the sales report's permissions.
        if can_view_sales(request):
            return (*self.list_display, "commission_link")
        return self.list_display

    list_filter = ("status", "region", "currency")
    search_fields = ("code", "legal_name", "display_name", "contact_email")
    readonly_fields = (
        "code",
        "status",
        "status_changed_at",
        "suspended_at",
        "terminated_at",
        "created_at",
        "float_display",
    )
    form = AgentForm
    inlines = [ChannelInline, PlanDiscountInline, MemberInline, ApiKeyInline]
    actions = ["suspend", "reactivate", "terminate", "create_key"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_urls(self) -> list[URLPattern]:
        # The sales and commission report (leb.agents.admin_reports).
        from .commission import CommissionViews

        return SalesReportViews(self).urls() + CommissionViews(self).urls() + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        extra_context = {**(extra_context or {}), "can_view_sales": can_view_sales(request)}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("commission statement"))
    def commission_link(self, obj: Agent) -> str:
        url = reverse("admin:agents_agent_commission", args=[obj.code])
        return format_html('<a href="{}">{}</a>', url, _("by month"))

    @admin.display(description=_("float (available + reserved)"))
    def float_display(self, obj: Agent) -> str:
        found = queries.balance(obj)
        return format_money(found.total, found.currency)

    def save_model(self, request: HttpRequest, obj: Agent, form: ModelForm, change: bool) -> None:
        obj.region = obj.region.upper()
        obj.currency = obj.currency.upper()
        if not change:
            obj.code = new_agent_code(obj.region)
            obj.created_at = clock.now()
        with transaction.atomic():
            if change:
                # New terms apply from the next sale: the ones in flight finish first.
                lock_agent(obj.pk)
            super().save_model(request, obj, form, change)
            float_account(obj)

    def save_formset(
        self, request: HttpRequest, form: ModelForm, formset: Any, change: bool
    ) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is AgentChannel and formset.has_changed():
            # The public check shows these: who changed them is kept.
            agent = form.instance
            channels = sorted(f"{c.kind}:{c.value}" for c in agent.channels.all())
            record(
                staff_actor(request),
                AuditAction.AGENT_CHANNELS,
                f"agent:{agent.code}",
                {"channels": channels},
            )
        if formset.model is AgentMember and formset.has_changed():
            # Who may sign in for the agent, and who may manage its keys.
            agent = form.instance
            members = sorted(
                f"{m.user.get_username()}:{m.role}" for m in agent.members.select_related("user")
            )
            record(
                staff_actor(request),
                "agent.members",
                f"agent:{agent.code}",
                {"members": members},
            )

    def _set_status(
        self,
        request: HttpRequest,
        queryset: QuerySet[Agent],
        status: str,
        action: str,
        title: Any,
        button: Any,
    ) -> TemplateResponse | None:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return _confirm(
                self,
                request,
                queryset,
                action=action,
                title=title,
                explanation=_("The agent's API stops or starts working at once."),
                button=button,
                form=form,
            )
        for agent in queryset.order_by("pk"):
            try:
                do_set_agent_status(
                    agent,
                    status,
                    actor=staff_actor(request),
                    reason=form.cleaned_data["reason"],
                    now=clock.now(),
                )
            except ValidationError as exc:
                self.message_user(request, f"{agent.code}: {error_text(exc)}", messages.ERROR)
        self.message_user(request, _("The agents' status was changed."), messages.SUCCESS)
        return None

    @admin.action(description=_("Suspend selected agents"))
    def suspend(self, request: HttpRequest, queryset: QuerySet[Agent]) -> TemplateResponse | None:
        return self._set_status(
            request, queryset, AgentStatus.SUSPENDED, "suspend", _("Suspend agents"), _("Suspend")
        )

    @admin.action(description=_("Reactivate selected agents"))
    def reactivate(
        self, request: HttpRequest, queryset: QuerySet[Agent]
    ) -> TemplateResponse | None:
        return self._set_status(
            request,
            queryset,
            AgentStatus.ACTIVE,
            "reactivate",
            _("Reactivate agents"),
            _("Reactivate"),
        )

    @admin.action(description=_("Terminate selected agents"))
    def terminate(self, request: HttpRequest, queryset: QuerySet[Agent]) -> TemplateResponse | None:
        return self._set_status(
            request,
            queryset,
            AgentStatus.TERMINATED,
            "terminate",
            _("Terminate agents"),
            _("Terminate"),
        )

    @admin.action(description=_("Create an API key for selected agents"))
    def create_key(self, request: HttpRequest, queryset: QuerySet[Agent]) -> TemplateResponse:
        keys = [
            do_create_api_key(agent, actor=staff_actor(request), now=clock.now())
            for agent in queryset.order_by("pk")
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("New API keys"),
            "keys": keys,
            "back": reverse("admin:agents_agent_changelist"),
        }
        return TemplateResponse(request, "admin/agents/new_key.html", context)


@admin.register(AgentApiKey)
class AgentApiKeyAdmin(ReadOnlyAdmin):
    list_display = (
        "key_id",
        "agent",
        "label",
        "created_at",
        "valid_until",
        "revoked_at",
        "last_used_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("key_id", "agent__code")
    exclude = ("salt",)
    actions = ["revoke", "rotate"]

    @admin.action(description=_("Revoke selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentApiKey]) -> None:
        for key in queryset.order_by("pk"):
            do_revoke_api_key(key, actor=staff_actor(request), now=clock.now())
        self.message_user(request, _("The keys were revoked."), messages.SUCCESS)

    @admin.action(description=_("Rotate selected keys (the old key keeps working for the overlap)"))
    def rotate(
        self, request: HttpRequest, queryset: QuerySet[AgentApiKey]
    ) -> TemplateResponse | None:
        keys = []
        for key in queryset.order_by("pk"):
            try:
                keys.append(do_rotate_api_key(key, actor=staff_actor(request), now=clock.now()))
            except ValidationError as exc:
                self.message_user(request, f"{key.key_id}: {error_text(exc)}", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": _("New API keys"),
            "keys": keys,
            "back": reverse("admin:agents_agentapikey_changelist"),
        }
        return TemplateResponse(request, "admin/agents/new_key.html", context)


class DepositForm(forms.ModelForm):
    class Meta:
        model = AgentDeposit
        fields = ("agent", "amount", "currency", "bank_reference")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        agent = data.get("agent")
        if agent is not None and (data.get("currency") or "").upper() != agent.currency:
            raise ValidationError(
                _("The agent's float is in %(float)s."), params={"float": agent.currency}
            )
        return data


@admin.register(AgentDeposit)
class AgentDepositAdmin(admin.ModelAdmin):
    form = DepositForm
    list_display = (
        "agent",
        "amount_display",
        "bank_reference",
        "status",
        "recorded_by",
        "recorded_at",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    search_fields = ("agent__code", "bank_reference")
    actions = ["approve", "reject"]

    @admin.display(description=_("amount"))
    def amount_display(self, obj: AgentDeposit) -> str:
        return format_money(obj.amount, obj.currency)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only the list's actions change a deposit; its row is never edited.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: AgentDeposit, form: ModelForm, change: bool
    ) -> None:
        saved = do_record_deposit(
            obj.agent,
            amount=obj.amount,
            currency=obj.currency,
            bank_reference=obj.bank_reference,
            staff=request.user,
            now=clock.now(),
        )
        obj.pk = saved.pk

    @admin.action(description=_("Approve selected deposits (credits the float)"))
    def approve(self, request: HttpRequest, queryset: QuerySet[AgentDeposit]) -> None:
        for deposit in queryset.filter(status=DepositStatus.PENDING).order_by("pk"):
            try:
                do_approve_deposit(deposit, staff=request.user, now=clock.now())
            except (ValidationError, LedgerError) as exc:
                self.message_user(request, f"{deposit}: {error_text(exc)}", messages.ERROR)
            else:
                self.message_user(
                    request, _("%(deposit)s approved.") % {"deposit": deposit}, messages.SUCCESS
                )

    @admin.action(description=_("Reject selected deposits"))
    def reject(
        self, request: HttpRequest, queryset: QuerySet[AgentDeposit]
    ) -> TemplateResponse | None:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return _confirm(
                self,
                request,
                queryset,
                action="reject",
                title=_("Reject deposits"),
                explanation=_("The float is not credited."),
                button=_("Reject"),
                form=form,
            )
        for deposit in queryset.filter(status=DepositStatus.PENDING).order_by("pk"):
            try:
                do_reject_deposit(
                    deposit, staff=request.user, note=form.cleaned_data["reason"], now=clock.now()
                )
            except ValidationError as exc:
                self.message_user(request, f"{deposit}: {error_text(exc)}", messages.ERROR)
        return None


@admin.register(AgentTopUp)
class AgentTopUpAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "agent",
        "external_id",
        "msisdn",
        "plan_code",
        "mode",
        "status",
        "reason",
        "created_at",
    )
    list_filter = ("status", "mode", "reason")
    search_fields = ("public_id", "external_id", "msisdn", "agent__code")
    actions = ["reverse"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the reversal action on the list; the form stays read-only.
        return obj is None and request.user.has_perm("agents.change_agenttopup")

    @admin.action(description=_("Reverse selected top-ups (refund and give the float back)"))
    def reverse(
        self, request: HttpRequest, queryset: QuerySet[AgentTopUp]
    ) -> TemplateResponse | None:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return _confirm(
                self,
                request,
                queryset,
                action="reverse",
                title=_("Reverse agent top-ups"),
                explanation=_(
                    "The subscriber's credit is taken back and the agent's float is credited."
                ),
                button=_("Reverse"),
                form=form,
            )
        for topup in queryset.order_by("pk"):
            try:
                do_reverse_agent_topup(
                    topup, staff=request.user, reason=form.cleaned_data["reason"], now=clock.now()
                )
            except (ValidationError, LedgerError) as exc:
                self.message_user(request, f"{topup}: {error_text(exc)}", messages.ERROR)
        return None
