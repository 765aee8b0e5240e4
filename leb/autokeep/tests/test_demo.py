from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from leb.autokeep.demo import load_demo_autokeep
from leb.autokeep.models import AutoKeepRule, MethodSetup, SavedPaymentMethod
from leb.jobs.schedule import scheduled_jobs

pytestmark = pytest.mark.django_db


def test_demo_subscriber_gets_a_card_and_a_rule(
    make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given the demo subscriber with a line
    demo = get_user_model().objects.create_user("demo", "demo@example.com", "x-long-pass-1")
    line = make_line(owner=demo)
    # when the demo is loaded twice
    load_demo_autokeep(now)
    load_demo_autokeep(now)
    # then one sandbox card is saved through the hosted flow and one line is kept
    method = SavedPaymentMethod.objects.get(user=demo)
    assert (method.provider, method.last4) == ("sandbox", "4242")
    assert MethodSetup.objects.get().method == method
    rule = AutoKeepRule.objects.get()
    assert (rule.line, rule.method, rule.plan) == (line, method, hkd_plan)


def test_without_demo_user_nothing_happens(now: datetime) -> None:
    load_demo_autokeep(now)
    assert not SavedPaymentMethod.objects.exists()


def test_job_is_scheduled(settings: Any) -> None:
    settings.AUTOKEEP_INTERVAL = 123
    job = next(j for j in scheduled_jobs() if j.name == "autokeep")
    assert (job.task_path, job.interval_seconds) == ("leb.autokeep.tasks.run_autokeep_task", 123)


def test_task_runs_the_job(now: datetime) -> None:
    from leb.autokeep.tasks import run_autokeep_task

    result = run_autokeep_task.call()
    assert result["started"] == 0
