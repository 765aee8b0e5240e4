"""The reminder scan, with the clock moved through a line's whole life."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.lines.actions import sweep_lines
from leb.lines.models import ExtensionRule, NumberPolicy
from leb.notifications.models import Channel
from leb.reminders.actions import scan_reminders
from leb.reminders.models import SentReminder
from leb.testing import topup

from .helpers import messages, recorded

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def test_expiry_reminders_go_out_30_7_and_1_days_before_and_not_earlier(
    make_line: Any, owner: Any, now: datetime
) -> None:
    # given a line valid for 30 days from now
    line = make_line(owner=owner)
    valid_until = line.valid_until
    assert valid_until == now + 30 * DAY

    # when the scan runs through the month
    first = scan_reminders(now + MINUTE)
    early_7 = scan_reminders(valid_until - 7 * DAY - MINUTE)
    at_7 = scan_reminders(valid_until - 7 * DAY)
    early_1 = scan_reminders(valid_until - DAY - MINUTE)
    at_1 = scan_reminders(valid_until - DAY + MINUTE)

    # then each one went out when it fell due, not before
    assert (first.sent, early_7.sent, at_7.sent, early_1.sent, at_1.sent) == (1, 0, 1, 0, 1)
    assert recorded(line) == [
        ("expiry_reminder", 30, "sent"),
        ("expiry_reminder", 7, "sent"),
        ("expiry_reminder", 1, "sent"),
    ]
    sent = messages(line)
    assert [(m.kind, m.channel, m.user_id) for m in sent] == [
        ("expiry_reminder", Channel.EMAIL, owner.pk)
    ] * 3
    # useful until the validity ends; a top-up meanwhile makes them moot
    assert {m.deliver_by for m in sent} == {valid_until}
    assert all(m.skip_if_validity_changed for m in sent)
    assert all(m.valid_until_snapshot == valid_until for m in sent)
    assert sent[1].context["days_left"] == 7
    assert sent[1].context["valid_until"] == valid_until.isoformat()


def test_a_rerun_or_a_later_scan_sends_nothing_twice(make_line: Any, now: datetime) -> None:
    # given a reminder already sent
    line = make_line()
    scan_reminders(now + MINUTE)

    # when the scan runs again at the same moment, later, and with no memory of the last run
    again = scan_reminders(now + MINUTE)
    later = scan_reminders(now + DAY)
    from leb.reminders.models import ScanMark

    ScanMark.objects.all().delete()
    forgetful = scan_reminders(now + 2 * DAY)

    # then there is still one row and one message
    assert (again.sent, later.sent, forgetful.sent) == (0, 0, 0)
    assert recorded(line) == [("expiry_reminder", 30, "sent")]
    assert len(messages(line)) == 1


def test_reminders_of_a_period_stop_after_a_top_up_and_the_next_period_gets_its_own(
    make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    # given the 30- and 7-day reminders were sent
    line = make_line()
    first_period = line.valid_until
    scan_reminders(now + MINUTE)
    scan_reminders(first_period - 7 * DAY)

    # when the line is topped up 3 days before expiry (180 days stack on top)
    topup(line, hkd_plan, now=first_period - 3 * DAY)
    line.refresh_from_db()
    second_period = line.valid_until
    assert second_period == first_period + 180 * DAY
    day_before_old_expiry = scan_reminders(first_period - DAY + MINUTE)
    too_early = scan_reminders(second_period - 30 * DAY - MINUTE)
    due = scan_reminders(second_period - 30 * DAY)

    # then the old period's 1-day reminder never goes out; the new period starts over
    assert day_before_old_expiry.sent == 0
    assert too_early.sent == 0
    assert due.sent == 1
    rows = SentReminder.objects.filter(line=line).order_by("pk")
    assert [(r.kind, r.offset_days, r.period) for r in rows] == [
        ("expiry_reminder", 30, first_period),
        ("expiry_reminder", 7, first_period),
        ("expiry_reminder", 30, second_period),
    ]


def test_after_downtime_only_the_most_urgent_reminder_goes_out(
    make_line: Any, now: datetime
) -> None:
    # given the scan ran when the 30-day reminder fell due, then stopped for weeks
    line = make_line()
    valid_until = line.valid_until
    scan_reminders(now + MINUTE)

    # when it runs again twelve hours before expiry
    result = scan_reminders(valid_until - 12 * timedelta(hours=1))

    # then only the 1-day reminder is sent; the 7-day one is recorded as skipped
    assert (result.sent, result.skipped) == (1, 1)
    assert recorded(line) == [
        ("expiry_reminder", 30, "sent"),
        ("expiry_reminder", 1, "sent"),
        ("expiry_reminder", 7, "skipped"),
    ]
    assert [m.context["offset_days"] for m in messages(line)] == [30, 1]


def test_after_downtime_past_expiry_only_the_current_state_is_told(
    make_line: Any, now: datetime
) -> None:
    # given a scan that never ran before, 40 days into the line's life (in grace)
    line = make_line()

    # when it runs
    result = scan_reminders(now + 40 * DAY)

    # then one message: the grace notice; the three expiry reminders are skipped
    assert (result.sent, result.skipped) == (1, 3)
    assert [m.kind for m in messages(line)] == ["grace_started"]


def test_grace_suspension_and_loss_warnings_follow_the_lifecycle_dates(
    make_line: Any, now: datetime
) -> None:
    # given a line nobody tops up: grace at +30 days, suspended at +60, lost at +150
    line = make_line()
    valid_until = line.valid_until
    suspended_at = valid_until + 30 * DAY
    lost_at = valid_until + 90 * DAY
    scan_reminders(valid_until - DAY + MINUTE)

    # when time passes, with the sweep persisting each status as it goes
    def step(moment: datetime) -> int:
        sweep_lines(moment)
        return scan_reminders(moment).sent

    counts = [
        step(valid_until - MINUTE),
        step(valid_until + MINUTE),
        step(suspended_at - MINUTE),
        step(suspended_at + MINUTE),
        step(lost_at - 7 * DAY - MINUTE),
        step(lost_at - 7 * DAY),
        step(lost_at - DAY),
        step(lost_at - MINUTE),
        step(lost_at + MINUTE),
        step(lost_at + 30 * DAY),
    ]

    # then each state change and each warning went out once, at its moment
    assert counts == [0, 1, 0, 1, 0, 1, 1, 0, 0, 0]
    assert recorded(line) == [
        ("expiry_reminder", 1, "sent"),
        # the first scan ever ran after these fell due
        ("expiry_reminder", 30, "skipped"),
        ("expiry_reminder", 7, "skipped"),
        ("grace_started", 0, "sent"),
        ("line_suspended", 0, "sent"),
        ("number_loss_warning", 7, "sent"),
        ("number_loss_warning", 1, "sent"),
    ]
    by_kind = {m.kind + str(m.context["offset_days"]): m for m in messages(line)}
    assert by_kind["grace_started0"].deliver_by == suspended_at
    assert by_kind["line_suspended0"].deliver_by == lost_at
    assert by_kind["number_loss_warning7"].deliver_by == lost_at
    assert by_kind["number_loss_warning1"].deliver_by == lost_at
    line.refresh_from_db()
    assert line.status == "terminated"


def test_a_policy_with_its_own_offsets(make_line: Any, now: datetime) -> None:
    # given a policy that reminds 14 and 3 days before
    policy = NumberPolicy.objects.create(
        code="short",
        name="Short",
        first_topup_days=60,
        grace_days=10,
        suspension_days=20,
        quarantine_days=30,
        reminder_offsets=[14, 3],
    )
    line = make_line(policy=policy)
    valid_until = line.valid_until

    # when the scan runs at the usual offsets and at the policy's
    sent = [
        scan_reminders(moment).sent
        for moment in (
            valid_until - 30 * DAY,
            valid_until - 14 * DAY - MINUTE,
            valid_until - 14 * DAY,
            valid_until - 7 * DAY,
            valid_until - 3 * DAY,
            valid_until - DAY,
        )
    ]

    # then only 14 and 3 days before
    assert sent == [0, 0, 1, 0, 1, 0]
    assert recorded(line) == [("expiry_reminder", 14, "sent"), ("expiry_reminder", 3, "sent")]


@pytest.mark.parametrize(
    ("rule", "expected_days"), [(ExtensionRule.STACK, 10 + 180), (ExtensionRule.RESET, 180)]
)
def test_stack_and_reset_top_ups_move_the_next_reminders(
    make_line: Any,
    hkd_plan: Any,
    hk_policy: NumberPolicy,
    now: datetime,
    rule: str,
    expected_days: int,
) -> None:
    # given a line 10 days from expiry under the rule
    hk_policy.extension_rule = rule
    hk_policy.max_validity_days = None
    hk_policy.save()
    line = make_line()
    topped_at = line.valid_until - 10 * DAY
    scan_reminders(topped_at)

    # when it is topped up with 180 days
    topup(line, hkd_plan, now=topped_at)
    line.refresh_from_db()

    # then its new period ends where the rule says, and the reminders follow it
    assert line.valid_until == topped_at + expected_days * DAY
    assert scan_reminders(line.valid_until - 30 * DAY - MINUTE).sent == 0
    assert scan_reminders(line.valid_until - 30 * DAY).sent == 1
    assert SentReminder.objects.filter(line=line, period=line.valid_until).count() == 1


def test_uk_timers_warn_of_the_loss_during_grace_and_after_suspension(
    make_line: Any, uk_policy: NumberPolicy, now: datetime
) -> None:
    # given a UK line: grace 89 days, then 4 suspended days before the number is lost
    line = make_line(policy=uk_policy, currency="GBP")
    valid_until = line.valid_until
    scan_reminders(valid_until)

    # when the scan runs through the end of its life
    moments = [93 * DAY - 7 * DAY, 89 * DAY, 93 * DAY - DAY, 93 * DAY]
    sent = [scan_reminders(valid_until + offset).sent for offset in moments]

    # then: 7-day warning in grace, suspension, 1-day warning, nothing once lost
    assert sent == [1, 1, 1, 0]
    assert [row[:2] for row in recorded(line) if row[2] == "sent"] == [
        ("grace_started", 0),
        ("number_loss_warning", 7),
        ("line_suspended", 0),
        ("number_loss_warning", 1),
    ]


def test_a_line_without_owner_is_reminded_by_sms_to_its_own_number(
    make_line: Any, now: datetime
) -> None:
    # given a line nobody has linked to an account
    line = make_line()

    # when its first reminder falls due
    scan_reminders(now + MINUTE)

    # then it goes by SMS to the line itself
    [message] = messages(line)
    assert (message.channel, message.destination, message.user_id) == (
        Channel.SMS,
        line.msisdn,
        None,
    )
    assert message.recipient == f"line:{line.pk}"


def test_an_owned_line_reminds_its_owner(make_line: Any, owner: Any, now: datetime) -> None:
    # given
    line = make_line(owner=owner)

    # when
    scan_reminders(now + MINUTE)

    # then
    [message] = messages(line)
    assert (message.channel, message.destination, message.user_id) == (
        Channel.EMAIL,
        owner.email,
        owner.pk,
    )


def test_inventory_and_terminated_lines_get_nothing(make_line: Any, now: datetime) -> None:
    # given a line never activated and one that ran its whole life
    stock = make_line(activate=False)
    gone = make_line()
    sweep_lines(now + 200 * DAY)

    # when the scan runs at every point of a life
    for days in (0, 23, 29, 30, 31, 60, 113, 119, 121, 200):
        scan_reminders(now + days * DAY)

    # then nothing is recorded for the stock line, nothing after the loss for the other
    assert recorded(stock) == []
    assert recorded(gone) == []


def test_many_lines_in_small_batches(make_line: Any, now: datetime) -> None:
    # given more due lines than a batch holds
    lines = [make_line() for _ in range(7)]

    # when
    result = scan_reminders(now + MINUTE, batch_size=3)

    # then every line is reminded once, in three batches
    assert (result.sent, result.batches) == (7, 3)
    assert all(recorded(line) == [("expiry_reminder", 30, "sent")] for line in lines)


def test_the_periodic_job_runs_the_scan(make_line: Any, now: datetime, monkeypatch: Any) -> None:
    # given a due reminder and the job as the scheduler knows it
    from leb.common import clock
    from leb.jobs.schedule import scheduled_jobs
    from leb.reminders.tasks import scan_reminders_task

    line = make_line()
    monkeypatch.setattr(clock, "now", lambda: now + MINUTE)
    [job] = [job for job in scheduled_jobs() if job.name == "reminders-scan"]

    # when the job's task body runs
    outcome = scan_reminders_task.call()

    # then it scanned with the configured interval and batch size
    assert job.task_path == "leb.reminders.tasks.scan_reminders_task"
    assert job.interval_seconds == 300
    assert outcome["sent"] == 1
    assert recorded(line) == [("expiry_reminder", 30, "sent")]
