"""Auto-keep under a validity cap: a top-up that would add no days is never
charged (the run is skipped, with the reason on the page); one that adds
fewer days than its plan says so."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.autokeep.actions import do_run_autokeep
from leb.autokeep.models import AutoKeepRun, RunStatus
from leb.catalog.models import Plan
from leb.lines.models import NumberPolicy
from leb.topups.models import TopUpOrder

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_cap(hk_policy: NumberPolicy) -> NumberPolicy:
    """Validity capped at 30 days from today."""
    hk_policy.max_validity_days = 30
    hk_policy.save()
    return hk_policy


def _valid_for(line: Any, days: int, now: datetime) -> None:
    line.valid_until = now + timedelta(days=days)
    line.save(update_fields=["valid_until"])


def test_a_run_that_would_add_no_days_is_skipped_and_charges_nothing(
    line: Any, card: Any, make_rule: Any, short_cap: Any, now: datetime, owner_client: Client
) -> None:
    # given "top up HK$50 / 180 days when 40 days are left" on a line valid 35
    # more days, capped at 30 days from today: the top-up would add no days
    _valid_for(line, 35, now)
    rule = make_rule(line, card, days_before=40)
    # when the job runs
    result = do_run_autokeep(now)
    # then nothing is charged, the run is recorded as skipped with its reason
    assert (result.started, result.skipped) == (0, 1)
    assert not TopUpOrder.objects.exists()
    run = AutoKeepRun.objects.get()
    assert (run.status, run.error_code, run.order) == (RunStatus.SKIPPED, "adds_nothing", None)
    rule.refresh_from_db()
    assert rule.next_check_at == now + timedelta(days=1)
    assert rule.attempts == 0 and not rule.paused
    # and the subscriber sees why on the auto-keep page
    page = owner_client.get("/autokeep/").content.decode()
    assert "Skipped, nothing was charged: the top-up would add no days" in page
    # and the next day's check, still without room, records nothing new
    do_run_autokeep(now + timedelta(days=1, minutes=1))
    assert AutoKeepRun.objects.count() == 1
    assert not TopUpOrder.objects.exists()


def test_a_days_only_plan_that_would_add_nothing_is_skipped_too(
    line: Any, card: Any, make_rule: Any, short_cap: Any, now: datetime
) -> None:
    # given a days-only plan (the quote itself refuses it at the cap)
    plan = Plan.objects.create(
        code="hk-keep",
        name_en="Keep 180",
        name_zh_hans="保号180天",
        name_zh_hant="保號180日",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
        channels=["auto", "web"],
    )
    _valid_for(line, 35, now)
    make_rule(line, card, plan=plan, days_before=40)
    # when the job runs
    do_run_autokeep(now)
    # then it is skipped, not failed, and nothing is charged
    assert AutoKeepRun.objects.get().status == RunStatus.SKIPPED
    assert not TopUpOrder.objects.exists()


def test_a_run_that_adds_fewer_days_says_so_on_the_page(
    line: Any, card: Any, make_rule: Any, now: datetime, owner_client: Client
) -> None:
    # given a 360-day plan due with 6 days left (365-day cap): 359 days added
    plan = Plan.objects.create(
        code="hk-360",
        name_en="HK$100 / 360 days",
        name_zh_hans="100港元 / 360天",
        name_zh_hant="100港元 / 360日",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=360,
        channels=["auto", "web"],
    )
    make_rule(line, card, plan=plan, days_before=7)
    crossing = line.valid_until - timedelta(days=6)
    # when the job tops up
    do_run_autokeep(crossing)
    # then the run succeeded and the page says it added fewer days
    run = AutoKeepRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    assert run.order is not None and run.order.days_added == 359
    from leb.common import clock

    with clock.frozen(crossing):
        page = owner_client.get("/autokeep/").content.decode()
    assert "Added 359 days, not 360." in page
