from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from stdnum import luhn

from leb.ledger.actions import Leg, post_transfers, system_account
from leb.ledger.models import AccountKind
from leb.lines.actions import do_activate_line, do_create_line, wallet_for
from leb.lines.management.commands.sweep import Command as SweepCommand
from leb.lines.models import Line, LineEvent, LineEventKind, LineStatus, NumberPolicy, NumberStatus

pytestmark = pytest.mark.django_db

ACTIVATED = datetime(2025, 1, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def policy() -> NumberPolicy:
    return NumberPolicy.objects.create(
        code="hk-30",
        name="HK 30 days",
        first_topup_days=30,
        grace_days=10,
        suspension_days=20,
        quarantine_days=90,
    )


def make_line(policy: NumberPolicy, n: int = 1) -> Line:
    body = f"8985200000{n:08d}"
    line = do_create_line(
        iccid=body + luhn.calc_check_digit(body),
        msisdn=f"+8529123{n:04d}",
        policy=policy,
        currency="HKD",
        now=ACTIVATED,
    )
    return do_activate_line(line, now=ACTIVATED)


def sweep(*args: str) -> str:
    out = io.StringIO()
    call_command("sweep", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_line_past_its_validity_goes_to_grace(policy):
    # given
    line = make_line(policy)
    assert line.valid_until == ACTIVATED + timedelta(days=30)
    now = line.valid_until + timedelta(hours=1)

    # when
    out = sweep("--now", now.isoformat())

    # then
    line.refresh_from_db()
    assert line.status == LineStatus.GRACE
    assert line.next_transition_at == ACTIVATED + timedelta(days=40)
    assert f"Sweep as of {now.isoformat()}" in out
    assert "lines: 1, transitions: 1, terminated: 0, numbers released: 0, batches: 1" in out
    assert "forfeited: none" in out
    event = LineEvent.objects.get(line=line, kind=LineEventKind.STATUS_CHANGED)
    assert (event.from_status, event.to_status, event.actor) == ("active", "grace", "sweep")


def test_line_not_yet_due_is_left_alone(policy):
    # given
    line = make_line(policy)
    now = ACTIVATED + timedelta(days=29)

    # when
    out = sweep("--now", now.isoformat())

    # then
    line.refresh_from_db()
    assert line.status == LineStatus.ACTIVE
    assert "lines: 0, transitions: 0" in out


def test_naive_time_is_taken_as_utc(policy):
    # given
    line = make_line(policy)

    # when
    out = sweep("--now", "2025-01-31T05:00:00")

    # then
    line.refresh_from_db()
    assert line.status == LineStatus.GRACE
    assert "Sweep as of 2025-01-31T05:00:00+00:00" in out


def test_termination_forfeits_balance_and_quarantines_number(policy):
    # given
    line = make_line(policy)
    post_transfers(
        f"test:line:{line.pk}:credit",
        [Leg(system_account(AccountKind.CLEARING, "HKD"), wallet_for(line), 1250, "topup")],
        now=ACTIVATED,
    )
    now = ACTIVATED + timedelta(days=30 + 10 + 20, hours=1)

    # when
    out = sweep("--now", now.isoformat(), "--batch-size", "10")

    # then
    line.refresh_from_db()
    assert line.status == LineStatus.TERMINATED
    assert line.phone_number is not None
    assert line.phone_number.status == NumberStatus.QUARANTINED
    assert "lines: 1, transitions: 3, terminated: 1, numbers released: 0" in out
    assert "forfeited HKD: HK$12.50" in out
    call_command("ledger", "verify", stdout=io.StringIO())


def test_number_is_released_after_quarantine(policy):
    # given
    line = make_line(policy)
    terminated_at = ACTIVATED + timedelta(days=60)
    sweep("--now", (terminated_at + timedelta(hours=1)).isoformat())

    # when
    out = sweep("--now", (terminated_at + timedelta(days=90, hours=1)).isoformat())

    # then
    line.refresh_from_db()
    assert line.phone_number is not None
    assert line.phone_number.status == NumberStatus.AVAILABLE
    assert "lines: 0, transitions: 0, terminated: 0, numbers released: 1" in out


def test_small_batches_sweep_every_due_line(policy):
    # given
    for n in range(1, 6):
        make_line(policy, n)
    now = ACTIVATED + timedelta(days=31)

    # when
    out = sweep("--now", now.isoformat(), "--batch-size", "2")

    # then
    assert set(Line.objects.values_list("status", flat=True)) == {LineStatus.GRACE}
    assert "lines: 5, transitions: 5" in out
    assert "batches: 3" in out


def test_sweep_twice_changes_nothing_the_second_time(policy):
    # given
    make_line(policy)
    now = (ACTIVATED + timedelta(days=31)).isoformat()
    sweep("--now", now)

    # when
    out = sweep("--now", now)

    # then
    assert "lines: 0, transitions: 0" in out
    assert LineEvent.objects.filter(kind=LineEventKind.STATUS_CHANGED).count() == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--now", "yesterday"),
        ("--now", "2025-13-01"),
        ("--batch-size", "0"),
        ("--batch-size", "-5"),
        ("--batch-size", "many"),
    ],
)
def test_bad_arguments_are_refused(args):
    # given / when / then
    with pytest.raises(CommandError):
        sweep(*args)


def test_help_renders():
    # given
    parser = SweepCommand().create_parser("leb", "sweep")

    # when
    text = parser.format_help()

    # then
    assert "--batch-size" in text
    assert "Persist every line status change" in text
