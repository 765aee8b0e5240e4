from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leb.autokeep.actions import do_run_autokeep, do_set_rule
from leb.autokeep.models import AutoKeepRun, RunStatus
from leb.testing import topup
from leb.topups.actions import do_create_order
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import DECLINED_CARD, OK_CARD, notified

pytestmark = pytest.mark.django_db


def test_threshold_rule_charges_once_per_crossing(
    line: Any, card: Any, make_rule: Any, now: datetime, ledger_ok: Any
) -> None:
    # given "top up HK$50 when 7 days are left"
    rule = make_rule(line, card, days_before=7)
    valid_until = line.valid_until
    # when the job runs well before the threshold
    result = do_run_autokeep(now)
    # then nothing is charged and the rule sleeps until the crossing
    assert result.started == 0
    rule.refresh_from_db()
    assert rule.next_check_at == valid_until - timedelta(days=7)
    assert do_run_autokeep(now + timedelta(days=1)).checked == 0
    # when the threshold is crossed
    crossing = valid_until - timedelta(days=6)
    result = do_run_autokeep(crossing)
    # then one top-up is made, through an "auto" order
    assert (result.started, result.succeeded) == (1, 1)
    run = AutoKeepRun.objects.get()
    assert (run.period, run.attempt, run.status) == (valid_until, 1, RunStatus.SUCCEEDED)
    assert run.order is not None
    assert (run.order.channel, run.order.status) == ("auto", OrderStatus.FULFILLED)
    line.refresh_from_db()
    assert line.valid_until == valid_until + timedelta(days=180)
    # and running again, the same moment or later, charges nothing more
    assert do_run_autokeep(crossing).started == 0
    assert do_run_autokeep(crossing + timedelta(hours=1)).started == 0
    assert TopUpOrder.objects.count() == 1
    ledger_ok()
    # the success is announced by the receipt alone (no second message)
    assert notified("autokeep_succeeded") == []


def test_next_crossing_charges_again(
    line: Any, card: Any, make_rule: Any, now: datetime, ledger_ok: Any
) -> None:
    make_rule(line, card, days_before=7)
    first = line.valid_until - timedelta(days=6)
    do_run_autokeep(first)
    line.refresh_from_db()
    second = line.valid_until - timedelta(days=6)
    do_run_autokeep(second)
    assert AutoKeepRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 2
    assert TopUpOrder.objects.filter(status=OrderStatus.FULFILLED).count() == 2
    ledger_ok()


def test_decline_notifies_retries_then_gives_up(
    line: Any, save_card: Any, make_rule: Any, now: datetime, settings: Any, ledger_ok: Any
) -> None:
    # given a card that declines and 3 attempts, 24 hours apart
    settings.AUTOKEEP_MAX_ATTEMPTS = 3
    settings.AUTOKEEP_RETRY_HOURS = 24
    rule = make_rule(line, save_card(DECLINED_CARD), days_before=10)
    valid_until = line.valid_until
    at = valid_until - timedelta(days=9)
    # when the threshold is crossed
    result = do_run_autokeep(at)
    # then the charge fails and the owner is told why, with a link to fix it
    assert result.failed == 1
    key = f"autokeep:{rule.pk}:{valid_until.isoformat()}:1"
    assert notified("autokeep_failed") == [key]
    from leb.notifications.models import Notification

    message = Notification.objects.filter(kind="autokeep_failed").first()
    assert message is not None
    assert message.context["reason_code"] == "card_declined"
    assert message.context["fix_url"].endswith("/autokeep/")
    # and no retry before 24 hours
    assert do_run_autokeep(at + timedelta(hours=23)).started == 0
    # when the retries come
    assert do_run_autokeep(at + timedelta(hours=24)).failed == 1
    result = do_run_autokeep(at + timedelta(hours=48))
    # then the third failure gives up with its own message
    assert result.gave_up == 1
    assert notified("autokeep_gave_up") == [f"autokeep:{rule.pk}:{valid_until.isoformat()}:3"]
    assert len(notified("autokeep_failed")) == 2
    # and nothing more is tried for this period
    for hours in (72, 96, 200):
        assert do_run_autokeep(at + timedelta(hours=hours)).started == 0
    assert list(AutoKeepRun.objects.values_list("attempt", "status").order_by("attempt")) == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
    ]
    assert TopUpOrder.objects.filter(status=OrderStatus.FAILED).count() == 3
    ledger_ok()


def test_a_new_card_after_giving_up_is_charged_in_the_same_period(
    line: Any,
    save_card: Any,
    make_rule: Any,
    now: datetime,
    settings: Any,
    ledger_ok: Any,
) -> None:
    # given a rule that gave up on a declining card
    settings.AUTOKEEP_MAX_ATTEMPTS = 2
    make_rule(line, save_card(DECLINED_CARD), days_before=10)
    valid_until = line.valid_until
    at = valid_until - timedelta(days=9)
    do_run_autokeep(at)
    assert do_run_autokeep(at + timedelta(hours=24)).gave_up == 1
    # when the owner saves a working card and sets the rule again, a day later
    later = at + timedelta(hours=48)
    make_rule(line, save_card(OK_CARD), days_before=10)
    result = do_run_autokeep(later)
    # then the new card is charged at once and the line is kept
    assert result.succeeded == 1
    line.refresh_from_db()
    assert line.valid_until > valid_until
    assert list(AutoKeepRun.objects.values_list("attempt", "status").order_by("attempt")) == [
        (1, "failed"),
        (2, "failed"),
        (3, "succeeded"),
    ]
    ledger_ok()


def test_topping_up_by_hand_after_giving_up_starts_a_new_period(
    line: Any, save_card: Any, make_rule: Any, hkd_plan: Any, now: datetime, settings: Any
) -> None:
    settings.AUTOKEEP_MAX_ATTEMPTS = 1
    make_rule(line, save_card(DECLINED_CARD), days_before=10)
    at = line.valid_until - timedelta(days=9)
    assert do_run_autokeep(at).gave_up == 1
    # when the owner tops up by hand
    topup(line, hkd_plan, now=at + timedelta(hours=1))
    line.refresh_from_db()
    # then the next crossing of the new period is tried again
    next_crossing = line.valid_until - timedelta(days=9)
    do_run_autokeep(at + timedelta(days=1))
    assert do_run_autokeep(next_crossing).started == 1


def test_a_pending_order_for_the_line_blocks_a_new_charge(
    line: Any, card: Any, make_rule: Any, hkd_plan: Any, now: datetime
) -> None:
    make_rule(line, card, days_before=7)
    at = line.valid_until - timedelta(days=6)
    do_create_order(line=line, channel="web", plan=hkd_plan, idempotency_key="web-1", now=at)
    assert do_run_autokeep(at).started == 0
    assert not AutoKeepRun.objects.exists()
    # once the unpaid order expired, auto-keep goes ahead
    assert do_run_autokeep(at + timedelta(hours=1)).started == 1


def test_paused_rules_are_not_charged_and_resume_works(
    owner: Any, line: Any, card: Any, make_rule: Any, now: datetime
) -> None:
    from leb.autokeep.actions import do_pause_rule, do_resume_rule

    rule = make_rule(line, card, days_before=7)
    do_pause_rule(user=owner, rule=rule, now=now)
    at = line.valid_until - timedelta(days=6)
    assert do_run_autokeep(at).checked == 0
    do_resume_rule(user=owner, rule=rule, now=at)
    assert do_run_autokeep(at).succeeded == 1


def test_expired_card_pauses_the_rule_with_a_notice(
    line: Any, save_card: Any, make_rule: Any, now: datetime
) -> None:
    # given a card valid through June 2026 and a rule due in July
    rule = make_rule(line, save_card(exp=(6, 2026)), days_before=1)
    at = line.valid_until - timedelta(hours=2)
    assert timezone.localdate(at).month == 7
    # when the job reaches the rule
    result = do_run_autokeep(at)
    # then it is paused, the owner is told, and nothing is charged
    assert (result.paused, result.started) == (1, 0)
    rule.refresh_from_db()
    assert (rule.paused, rule.paused_reason) == (True, "card_expired")
    assert notified("autokeep_failed") == [f"autokeep:{rule.pk}:paused:{rule.method_id}"]


def test_card_expiring_is_warned_once(owner: Any, save_card: Any, now: datetime) -> None:
    # given a card that expires at the end of August 2026
    method = save_card(exp=(8, 2026))
    # when the clock moves day by day through the summer
    warned_on = []
    day = now
    while day < datetime(2026, 9, 10, tzinfo=now.tzinfo):
        if do_run_autokeep(day).warned:
            warned_on.append(day.date())
        day += timedelta(days=1)
    # then exactly one warning, 30 days before the end of the expiry month
    assert len(warned_on) == 1
    assert warned_on[0] >= datetime(2026, 8, 1).date()
    assert notified("card_expiring") == [f"card_expiring:{method.pk}"]


def test_job_reads_only_due_rules(
    make_line: Any, owner: Any, card: Any, make_rule: Any, now: datetime
) -> None:
    # given many rules, none due
    for _ in range(5):
        make_rule(make_line(owner=owner), card, days_before=7)
    do_run_autokeep(now)
    # when the job runs again
    with CaptureQueriesContext(connection) as queries:
        result = do_run_autokeep(now + timedelta(hours=1))
    # then it only asked the index for due rules
    assert result.checked == 0
    assert len(queries) <= 3


def test_cheapest_rule_follows_the_keep_plan(
    owner: Any, line: Any, card: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    from leb.planner.queries import keep_plan

    # given "keep my number at the lowest cost" for a year
    until = (now + timedelta(days=365)).date()
    rule = do_set_rule(user=owner, line=line, mode="cheapest", method=card, until=until, now=now)
    plan = keep_plan(line, until, now=now)
    assert plan.steps
    first_day = plan.steps[0].on
    # when the job runs before the first planned day
    do_run_autokeep(now)
    rule.refresh_from_db()
    # then it waits for that day
    if first_day > now.date():
        assert rule.next_check_at is not None
        assert rule.next_check_at.date() <= first_day
        assert AutoKeepRun.objects.count() == 0
    # when the day comes, the planned plan is bought
    due = max(rule.next_check_at or now, now)
    do_run_autokeep(due + timedelta(hours=1))
    run = AutoKeepRun.objects.get()
    assert run.plan_code == plan.steps[0].plan_code
    assert run.status == RunStatus.SUCCEEDED
    ledger_ok()
