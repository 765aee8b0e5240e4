"""`leb reconcile` and the settlement-daily job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from leb.common import clock
from leb.finance.models import SettlementRun
from leb.finance.tasks import reconcile_yesterday
from leb.jobs.schedule import scheduled_jobs

from .conftest import DAY

pytestmark = pytest.mark.django_db


def test_command_prints_a_clean_day_and_exits_0(clean_day: list[Any]) -> None:
    # when a clean day is reconciled from the command line
    out = StringIO()
    call_command("reconcile", "--date", DAY.isoformat(), "--provider", "sandbox", stdout=out)
    # then the report shows both sides and no mismatch
    text = out.getvalue()
    assert f"{DAY} sandbox HKD" in text
    assert "captured  leb      HK$150.00  provider      HK$150.00" in text
    assert "0 mismatch(es)" in text


def test_command_lists_mismatches_and_exits_1(
    clean_day: list[Any], pay: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given a capture leb never settled
    lost = pay(at_hour(15), settled=False)
    # when the day is reconciled from the command line
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("reconcile", "--date", DAY.isoformat(), stdout=out)
    # then it exits 1 and names the mismatch
    assert exited.value.code == 1
    assert f"MISMATCH paid_not_fulfilled order {lost.order.public_id}" in out.getvalue()
    assert "1 mismatch(es)" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "31/05/2026"], "--date must be YYYY-MM-DD"),
        (["--date", "2026-05-31", "--provider", "nope"], "not an enabled payment provider"),
        (["--date", "2099-01-01"], "is not over yet"),
    ],
)
def test_command_refuses_bad_input_clearly(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("reconcile", *args, stdout=StringIO())
    assert not SettlementRun.objects.exists()


def test_the_job_reconciles_yesterday_in_the_operators_time_zone(
    clean_day: list[Any], now: datetime
) -> None:
    # given the clock at 00:30 on 1 June in Hong Kong (16:30 UTC on 31 May)
    with clock.frozen(datetime(2026, 5, 31, 16, 30, tzinfo=now.tzinfo)):
        result = reconcile_yesterday()
    # then 31 May was reconciled, as the job's own actor
    (run,) = SettlementRun.objects.all()
    assert (run.date, run.actor, run.leb_captured) == (DAY, "job:settlement-daily", 15000)
    assert result == {"runs": 1, "mismatches": 0, "errors": 0}


def test_the_job_goes_on_when_a_provider_is_down(settings: Any) -> None:
    settings.PAYMENT_PROVIDERS = ["sandbox", "down"]
    settings.PAYMENT_PROVIDER_CLASSES = {"down": "leb.finance.tests.providers.DownProvider"}
    result = reconcile_yesterday()
    assert result == {"runs": 1, "mismatches": 0, "errors": 1}
    assert [run.provider for run in SettlementRun.objects.all()] == ["sandbox"]


def test_the_job_is_scheduled(settings: Any) -> None:
    settings.SETTLEMENT_INTERVAL = 3600
    jobs = {job.name: job for job in scheduled_jobs()}
    assert jobs["settlement-daily"].task_path == "leb.finance.tasks.reconcile_yesterday_task"
    assert jobs["settlement-daily"].interval_seconds == 3600
    assert timedelta(seconds=jobs["settlement-daily"].interval_seconds) < timedelta(days=1)
