"""/api/v1 endpoints of this app, mounted on the one API in leb/apiv1/api.py.
Use leb.api.auth (ANYONE, SIGNED_IN, user_of) and leb.common.problems.Problem."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from leb.api.auth import SIGNED_IN, user_of
from leb.common import clock
from leb.common.problems import Problem
from leb.common.schemas import Money, ProblemOut, money
from leb.lines.models import Line

from .forms import KeepPlanForm
from .queries import KeepPlan, default_target, keep_plan

router = Router(tags=["planner"])


class KeepPlanStepOut(Schema):
    on: date = Field(description="The local day to top up (operator's time zone).")
    plan_code: str
    plan_name: str
    channel: str = Field(description="Where the plan is bought: auto, else web.")
    price: Money = Field(description="What is paid, after guaranteed promotions.")
    promotion_code: str = Field(description="The promotion counted on, if any.")
    valid_until_after: date
    receive_only_days: int = Field(description="Days before this top-up the line may be in grace.")
    days: int = Field(description="The validity days the plan grants (with bonus days).")
    days_added: int = Field(
        description=(
            "Whole days this top-up really adds: fewer than `days` when the line's validity "
            "cap or its reset rule takes some. Never 0: a top-up that adds nothing is not planned."
        )
    )


class KeepPlanOut(Schema):
    line_id: int
    until: date
    allow_grace: bool
    feasible: bool
    reason: str = Field(description="Why no plan keeps the line, when not feasible.")
    steps: list[KeepPlanStepOut]
    total: Money
    receive_only_days: int = Field(description="Days up to `until` the line may be in grace.")


def keep_plan_out(plan: KeepPlan) -> dict[str, Any]:
    return {
        "line_id": plan.line_id,
        "until": plan.until,
        "allow_grace": plan.allow_grace,
        "feasible": plan.feasible,
        "reason": plan.reason,
        "steps": [
            {
                "on": step.on,
                "plan_code": step.plan_code,
                "plan_name": step.plan_name,
                "channel": step.channel,
                "price": money(step.price, step.currency),
                "promotion_code": step.promotion_code,
                "valid_until_after": step.valid_until_after,
                "receive_only_days": step.receive_only_days,
                "days": step.days,
                "days_added": step.days_added,
            }
            for step in plan.steps
        ],
        "total": money(plan.total, plan.currency),
        "receive_only_days": plan.receive_only_days,
    }


@router.get(
    "/me/lines/{line_id}/keep-plan",
    response={200: KeepPlanOut, 401: ProblemOut, 404: ProblemOut, 422: ProblemOut},
    auth=SIGNED_IN,
    tags=["me"],
)
def get_keep_plan(
    request: HttpRequest, line_id: int, until: str = "", allow_grace: bool = False
) -> Any:
    """The cheapest schedule of top-ups that keeps your line active until
    `until` (YYYY-MM-DD, default three years from today). With
    `allow_grace=true` the line may spend days in grace (receive-only) when
    that is cheaper, but never loses its number."""
    line = Line.objects.select_related("policy").filter(pk=line_id, owner=user_of(request)).first()
    if line is None:
        raise Problem(404, "line_not_found", _("You have no line with this id."))
    now = clock.now()
    form = KeepPlanForm(
        {"until": until or default_target(now).isoformat(), "allow_grace": allow_grace}, now=now
    )
    if not form.is_valid():
        errors = [
            {
                "field": field,
                "message": str(error.message % (error.params or {})),
                "code": error.code or "invalid",
            }
            for field, field_errors in form.errors.as_data().items()
            for error in field_errors
        ]
        raise Problem(422, errors[0]["code"], errors[0]["message"], errors=errors)
    plan = keep_plan(
        line, form.cleaned_data["until"], now=now, allow_grace=form.cleaned_data["allow_grace"]
    )
    return keep_plan_out(plan)
