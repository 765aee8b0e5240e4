"""The subscriber's auto-keep pages: saved cards, rules per line, last runs.
Thin: every write goes through leb.autokeep.actions. Someone else's line,
rule, card or setup is a 404."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from leb.catalog.models import Plan
from leb.common import clock
from leb.common.formatting import format_money, format_phone
from leb.lines.models import Line, LineStatus

from . import actions
from .actions import AutoKeepError
from .forms import FIELD_FOR_CODE, AddMethodForm, RuleForm
from .models import (
    AutoKeepRule,
    AutoKeepRun,
    MethodSetup,
    MethodStatus,
    SavedPaymentMethod,
    SetupStatus,
)
from .queries import usable_methods


def _user(request: HttpRequest) -> Any:
    return request.user


def _my_line(request: HttpRequest, line_id: int) -> Line:
    return get_object_or_404(
        Line.objects.select_related("phone_number"), pk=line_id, owner_id=request.user.pk
    )


def _safe_next(request: HttpRequest, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def _error(exc: AutoKeepError) -> str:
    return str(exc.messages[0])


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    now = clock.now()
    methods = list(
        SavedPaymentMethod.objects.filter(user=user, status=MethodStatus.ACTIVE).order_by(
            "-created_at", "-id"
        )
    )
    usable = {m.pk for m in usable_methods(user, now)}
    lines = list(
        Line.objects.filter(owner=user)
        .exclude(status=LineStatus.TERMINATED)
        .select_related("phone_number")
        .order_by("pk")
    )
    rules = {
        rule.line_id: rule
        for rule in AutoKeepRule.objects.filter(user=user).select_related("method", "plan")
    }
    runs = list(
        AutoKeepRun.objects.filter(rule__user=user)
        .select_related("rule__line__phone_number", "order")
        .order_by("-created_at", "-id")[:10]
    )
    return render(
        request,
        "autokeep/overview.html",
        {
            "methods": [(m, m.pk in usable) for m in methods],
            "lines": [(line, rules.get(line.pk)) for line in lines],
            "runs": runs,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def add_method(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next") or "")
    form = AddMethodForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _setup, url = actions.do_start_method_setup(
                user=request.user, provider=form.cleaned_data["provider"], next_url=next_url
            )
        except AutoKeepError as exc:
            form.add_error("provider", _error(exc))
        else:
            return HttpResponseRedirect(url)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "autokeep/add_method.html",
        {"form": form, "next": next_url},
        status=status,
    )


@login_required
@require_http_methods(["GET"])
def setup_return(request: HttpRequest, setup_id: UUID) -> HttpResponse:
    setup = get_object_or_404(MethodSetup, public_id=setup_id, user=_user(request))
    setup = actions.do_finish_method_setup(setup, cancelled=request.GET.get("cancelled") == "1")
    if setup.status == SetupStatus.COMPLETED and setup.method is not None:
        messages.success(request, _("Card •••• %(last4)s saved.") % {"last4": setup.method.last4})
        return redirect(setup.next_url or reverse("autokeep:overview"))
    if setup.status == SetupStatus.FAILED:
        messages.error(request, setup.failure_message or _("The card was not saved."))
        return redirect("autokeep:overview")
    return render(request, "autokeep/setup_pending.html", {"setup": setup})


@login_required
@require_POST
def remove_method(request: HttpRequest, method_id: int) -> HttpResponse:
    method = get_object_or_404(
        SavedPaymentMethod, pk=method_id, user=_user(request), status=MethodStatus.ACTIVE
    )
    paused = method.rules.filter(paused=False).count()
    actions.do_remove_method(user=request.user, method=method)
    text = _("Card •••• %(last4)s removed.") % {"last4": method.last4}
    if paused:
        text += " " + ngettext(
            "Auto-keep of %(count)d line is paused.",
            "Auto-keep of %(count)d lines is paused.",
            paused,
        ) % {"count": paused}
    messages.success(request, text)
    return redirect("autokeep:overview")


def _plan_choices(line: Line) -> list[tuple[str, str]]:
    return [
        (
            plan.code,
            ngettext(
                "%(name)s · %(price)s · %(days)d day",
                "%(name)s · %(price)s · %(days)d days",
                plan.validity_days,
            )
            % {
                "name": plan.display_name(),
                "price": format_money(plan.price, plan.currency),
                "days": plan.validity_days,
            },
        )
        for plan in actions.plans_for_line(line)
    ]


@login_required
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, line_id: int) -> HttpResponse:
    line = _my_line(request, line_id)
    rule = AutoKeepRule.objects.filter(line=line, user=_user(request)).first()
    methods = list(usable_methods(_user(request)))
    if not methods:
        messages.info(request, _("Save a card first: auto-keep charges a saved card."))
        url = reverse("autokeep:add_method") + "?next=" + reverse("autokeep:rule", args=[line.pk])
        return redirect(url)
    initial: dict[str, Any] = {"method": methods[0].pk}
    if rule is not None:
        initial = {
            "mode": rule.mode,
            "plan": rule.plan.code if rule.plan else "",
            "days_before": rule.days_before,
            "until": rule.until,
            "allow_grace": rule.allow_grace,
            "method": rule.method_id,
        }
    form = RuleForm(
        request.POST or None,
        initial=initial,
        plan_choices=_plan_choices(line),
        methods=methods,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        plan = Plan.objects.filter(code=data["plan"]).first() if data["plan"] else None
        method = next((m for m in methods if m.pk == data["method"]), None)
        try:
            actions.do_set_rule(
                user=request.user,
                line=line,
                mode=data["mode"],
                method=method,
                plan=plan,
                days_before=data["days_before"],
                until=data["until"],
                allow_grace=data["allow_grace"],
            )
        except AutoKeepError as exc:
            form.add_error(FIELD_FOR_CODE.get(exc.code or "", None), _error(exc))
        else:
            messages.success(
                request,
                _("Auto-keep is on for %(number)s.") % {"number": format_phone(line.msisdn)},
            )
            return redirect("mylines:line", line_id=line.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "autokeep/rule.html",
        {"line": line, "rule": rule, "form": form, "max_days": actions.max_days_before()},
        status=status,
    )


def _rule_of(request: HttpRequest, line_id: int) -> AutoKeepRule:
    line = _my_line(request, line_id)
    return get_object_or_404(AutoKeepRule, line=line, user=_user(request))


def _back(request: HttpRequest, line_id: int) -> HttpResponse:
    target = _safe_next(request, request.POST.get("next", ""))
    return redirect(target or reverse("mylines:line", args=[line_id]))


@login_required
@require_POST
def pause(request: HttpRequest, line_id: int) -> HttpResponse:
    rule = _rule_of(request, line_id)
    actions.do_pause_rule(user=request.user, rule=rule)
    messages.success(request, _("Auto-keep is paused."))
    return _back(request, line_id)


@login_required
@require_POST
def resume(request: HttpRequest, line_id: int) -> HttpResponse:
    rule = _rule_of(request, line_id)
    try:
        actions.do_resume_rule(user=request.user, rule=rule)
    except AutoKeepError as exc:
        messages.error(request, _error(exc))
    else:
        messages.success(request, _("Auto-keep is on again."))
    return _back(request, line_id)


@login_required
@require_POST
def from_plan(request: HttpRequest, line_id: int) -> HttpResponse:
    """Turn the planner's cheapest schedule into a "lowest cost" rule."""
    line = _my_line(request, line_id)
    try:
        until = actions.parse_until(request.POST.get("until", ""))
        actions.do_rule_from_plan(
            user=request.user,
            line=line,
            until=until,
            allow_grace=request.POST.get("allow_grace") == "1",
        )
    except AutoKeepError as exc:
        if exc.code in ("no_method", "card_expired"):
            messages.info(request, _("Save a card first: auto-keep charges a saved card."))
            url = (
                reverse("autokeep:add_method") + "?next=" + reverse("mylines:line", args=[line.pk])
            )
            return redirect(url)
        messages.error(request, _error(exc))
        return redirect("mylines:line", line_id=line.pk)
    messages.success(
        request,
        _("Auto-keep will keep %(number)s at the lowest cost.")
        % {"number": format_phone(line.msisdn)},
    )
    return redirect("mylines:line", line_id=line.pk)
