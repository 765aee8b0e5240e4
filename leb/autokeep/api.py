"""/api/v1 endpoints of this app, mounted on the one API in leb/apiv1/api.py:
your saved payment methods and the auto-keep rule of one of your lines."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router

from leb.api.auth import SIGNED_IN, user_of
from leb.catalog.models import Plan
from leb.common import clock
from leb.common.problems import Problem, for_field
from leb.common.schemas import ProblemOut
from leb.lines.models import Line

from . import actions
from .forms import FIELD_FOR_CODE
from .models import AutoKeepRule, MethodStatus, SavedPaymentMethod
from .queries import is_usable, last_runs, usable_methods
from .schemas import AutoKeepIn, AutoKeepOut, PaymentMethodOut

router = Router(tags=["autokeep"])

ERRORS: dict[int, Any] = {401: ProblemOut, 404: ProblemOut, 422: ProblemOut}
# A body that is not JSON (400); a session without its CSRF token (403).
WRITE_ERRORS: dict[int, Any] = {400: ProblemOut, 403: ProblemOut, **ERRORS}
FIELD_NAMES = {"plan": "plan_code", "method": "payment_method_id"}


def _line(request: HttpRequest, line_id: int) -> Line:
    line = Line.objects.filter(pk=line_id, owner=user_of(request)).first()
    if line is None:
        raise Problem(404, "line_not_found", _("There is no such line in your account."))
    return line


def _rule_out(rule: AutoKeepRule | None) -> dict[str, Any]:
    if rule is None:
        return {"enabled": False}
    runs = list(last_runs(rule, 1))
    last = runs[0] if runs else None
    return {
        "enabled": True,
        "mode": rule.mode,
        "plan_code": rule.plan.code if rule.plan else None,
        "days_before": rule.days_before,
        "until": rule.until,
        "allow_grace": rule.allow_grace,
        "paused": rule.paused,
        "paused_reason": rule.paused_reason,
        "payment_method_id": rule.method_id,
        "next_check_at": None if rule.paused else rule.next_check_at,
        "last_run": None
        if last is None
        else {
            "period": last.period,
            "attempt": last.attempt,
            "status": last.status,
            "error_code": last.error_code,
            "error": last.error,
            "order_id": str(last.order.public_id) if last.order else None,
            "created_at": last.created_at,
        },
    }


@router.get(
    "/me/payment-methods",
    response={200: list[PaymentMethodOut], 401: ProblemOut},
    auth=SIGNED_IN,
    tags=["me"],
)
def my_payment_methods(request: HttpRequest) -> Any:
    """Your saved cards (brand, last four digits, expiry; never the number)."""
    now = clock.now()
    methods = SavedPaymentMethod.objects.filter(
        user=user_of(request), status=MethodStatus.ACTIVE
    ).order_by("-created_at", "-id")
    return [
        {
            "id": m.pk,
            "provider": m.provider,
            "brand": m.brand,
            "last4": m.last4,
            "exp_month": m.exp_month,
            "exp_year": m.exp_year,
            "usable": is_usable(m, now),
            "created_at": m.created_at,
        }
        for m in methods
    ]


@router.get(
    "/me/lines/{line_id}/autokeep",
    response={200: AutoKeepOut, **ERRORS},
    auth=SIGNED_IN,
    tags=["me"],
)
def get_line_autokeep(request: HttpRequest, line_id: int) -> Any:
    """The auto-keep rule of one of your lines (`enabled: false` when none)."""
    line = _line(request, line_id)
    rule = AutoKeepRule.objects.filter(line=line, user=user_of(request)).first()
    return _rule_out(rule)


@router.put(
    "/me/lines/{line_id}/autokeep",
    response={200: AutoKeepOut, **WRITE_ERRORS},
    auth=SIGNED_IN,
    tags=["me"],
)
def put_line_autokeep(request: HttpRequest, line_id: int, payload: AutoKeepIn) -> Any:
    """Set (create or replace) the auto-keep rule of one of your lines."""
    user = user_of(request)
    line = _line(request, line_id)
    if payload.payment_method_id is None:
        method = usable_methods(user).first()
    else:
        method = SavedPaymentMethod.objects.filter(
            pk=payload.payment_method_id, user=user, status=MethodStatus.ACTIVE
        ).first()
        if method is None:
            raise Problem(
                404,
                "payment_method_not_found",
                _("There is no such saved card in your account."),
            )
    plan = None
    if payload.plan_code:
        plan = Plan.objects.filter(code=payload.plan_code).first()
        if plan is None:
            message = _("There is no plan %(code)s.") % {"code": payload.plan_code}
            raise Problem(
                422,
                "plan_unknown",
                message,
                errors=[{"field": "plan_code", "message": message, "code": "plan_unknown"}],
            )
    try:
        rule = actions.do_set_rule(
            user=user,
            line=line,
            mode=payload.mode,
            method=method,
            plan=plan,
            days_before=payload.days_before,
            until=payload.until,
            allow_grace=payload.allow_grace,
        )
    except actions.AutoKeepError as exc:
        field = FIELD_FOR_CODE.get(exc.code or "", "")
        with for_field(FIELD_NAMES.get(field, field)):
            raise
    if payload.paused:
        rule = actions.do_pause_rule(user=user, rule=rule)
    rule = AutoKeepRule.objects.select_related("plan").get(pk=rule.pk)
    return _rule_out(rule)
