"""Demo auto-keep: the demo subscriber has saved the sandbox test card (through
the sandbox's hosted "save a card" flow) and keeps one line with it: top up the
cheapest automatic plan when 7 days are left."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model

from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.payments.providers import sandbox
from leb.payments.providers.base import enabled_provider_names

from .actions import do_finish_method_setup, do_set_rule, do_start_method_setup, plans_for_line
from .models import AutoKeepRule, MethodStatus, RuleMode, SavedPaymentMethod

DEMO_USERNAME = "demo"
TEST_CARD = "4242424242424242"
DAYS_BEFORE = 7


def load_demo_autokeep(now: datetime) -> None:
    """Idempotent: a second run finds the card and the rule and changes nothing."""
    user = get_user_model().objects.filter(username=DEMO_USERNAME).first()
    if user is None or "sandbox" not in enabled_provider_names():
        return
    method = (
        SavedPaymentMethod.objects.filter(user=user, provider="sandbox", status=MethodStatus.ACTIVE)
        .order_by("created_at")
        .first()
    )
    if method is None:
        setup, _url = do_start_method_setup(user=user, provider="sandbox", now=now)
        sandbox.vault_card(
            TEST_CARD,
            12,
            now.year + 3,
            customer_reference=f"sbxcus_{user.pk}",
            setup_id=setup.provider_reference.removeprefix("sbxpm_"),
        )
        setup = do_finish_method_setup(setup, now=now)
        method = setup.method
    if method is None or AutoKeepRule.objects.filter(user=user).exists():
        return
    for line in Line.objects.filter(owner=user).select_related("policy").order_by("pk"):
        if lifecycle.effective_status(line, now) != LineStatus.ACTIVE:
            continue
        plans = plans_for_line(line, now)
        if not plans:
            continue
        cheapest = min(plans, key=lambda plan: (plan.price, plan.code))
        do_set_rule(
            user=user,
            line=line,
            mode=RuleMode.THRESHOLD,
            method=method,
            plan=cheapest,
            days_before=DAYS_BEFORE,
            now=now,
        )
        return
