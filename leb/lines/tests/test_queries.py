from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from leb.lines import lifecycle
from leb.lines.actions import do_activate_line, do_create_line, sweep_lines
from leb.lines.identifiers import normalize_msisdn
from leb.lines.models import LineStatus, NumberStatus
from leb.lines.queries import PublicLineStatus, live_line_for_number, public_line_status
from leb.testing import make_iccid, next_serial

pytestmark = pytest.mark.django_db


def test_quick_check_gives_dates_without_private_facts(make_line: Any, now: datetime) -> None:
    line = make_line()
    result = public_line_status(line.msisdn.replace("+852", ""), now + timedelta(days=10, hours=1))
    assert result is not None
    assert result.status == "active" and result.days_left == 20
    assert result.number_lost_on == line.valid_until + timedelta(days=90)
    assert not hasattr(result, "balance") and not hasattr(result, "owner")


def test_quick_check_unknown_terminated_and_bad_input(make_line: Any, now: datetime) -> None:
    assert public_line_status("+85294999999", now) is None
    line = make_line()
    sweep_lines(now + timedelta(days=200))
    assert public_line_status(line.msisdn, now + timedelta(days=200)) is None
    with pytest.raises(ValidationError):
        public_line_status("12ab", now)


def _through_the_model(number: str, now: datetime) -> Any:
    """The quick check as the line's model answers it: the oracle of the
    one-statement read."""
    msisdn = normalize_msisdn(number)
    line = live_line_for_number(msisdn)
    if line is None or line.status == LineStatus.INVENTORY:
        return None
    status = lifecycle.effective_status(line, now)
    if status == LineStatus.TERMINATED or line.valid_until is None:
        return None
    valid_until = line.valid_until
    return PublicLineStatus(
        msisdn=msisdn,
        status=status,
        valid_until=valid_until,
        days_left=max(0, math.ceil((valid_until - now).total_seconds() / 86400)),
        grace_from=lifecycle.grace_from(valid_until),
        suspended_from=lifecycle.suspended_from(valid_until, line.policy),
        number_lost_on=lifecycle.terminated_from(valid_until, line.policy),
    )


# Days after activation (30 days' validity, 30 of grace, 60 suspended):
# each side of every boundary, before and after the sweep.
OFFSETS = [
    timedelta(0),
    timedelta(days=10, hours=1),
    timedelta(days=30) - timedelta(seconds=1),
    timedelta(days=30),
    timedelta(days=59, hours=23),
    timedelta(days=60),
    timedelta(days=119, hours=23),
    timedelta(days=120),
    timedelta(days=200),
]


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("swept", [False, True])
def test_quick_check_agrees_with_the_line_model(
    make_line: Any, now: datetime, offset: timedelta, swept: bool
) -> None:
    # given
    line = make_line()
    at = now + offset
    if swept:
        sweep_lines(at)

    # when
    result = public_line_status(line.msisdn, at)

    # then
    assert result == _through_the_model(line.msisdn, at)
    if result is not None:
        assert result.valid_until == line.valid_until
        assert result.valid_until.utcoffset() == timedelta(0)


def test_quick_check_reads_the_lines_own_policy(
    make_line: Any, uk_policy: Any, now: datetime
) -> None:
    # given
    line = make_line(policy=uk_policy, currency="GBP")
    at = now + timedelta(days=45)

    # when
    result = public_line_status(line.msisdn, at)

    # then
    assert result == _through_the_model(line.msisdn, at)
    assert result is not None
    assert result.suspended_from == line.valid_until + timedelta(days=uk_policy.grace_days)


def test_quick_check_of_an_inventory_line_is_none(make_line: Any, now: datetime) -> None:
    line = make_line(activate=False)
    assert public_line_status(line.msisdn, now) is None


def test_quick_check_of_a_quarantined_number_is_none(make_line: Any, now: datetime) -> None:
    # given: the line lost its number, which now waits out its quarantine
    line = make_line()
    sweep_lines(now + timedelta(days=121))
    line.phone_number.refresh_from_db()
    assert line.phone_number.status == NumberStatus.QUARANTINED

    # then
    assert public_line_status(line.msisdn, now + timedelta(days=150)) is None


def test_quick_check_of_a_reused_number_shows_the_new_line(
    make_line: Any, hk_policy: Any, now: datetime
) -> None:
    # given: after the quarantine the number went to a new line
    old = make_line()
    sweep_lines(now + timedelta(days=121))
    later = now + timedelta(days=300)
    new = do_create_line(
        iccid=make_iccid(next_serial()),
        policy=hk_policy,
        currency="HKD",
        msisdn=old.msisdn,
        now=later,
    )
    new = do_activate_line(new, now=later)

    # when
    result = public_line_status(old.msisdn, later + timedelta(days=1))

    # then
    assert result is not None
    assert result.valid_until == new.valid_until
    assert result.status == LineStatus.ACTIVE and result.days_left == 29


@pytest.mark.parametrize("bad", ["", "12ab", "12345", "+1", "0085" + "9" * 20])
def test_quick_check_refuses_what_is_not_a_number(db: Any, now: datetime, bad: str) -> None:
    with pytest.raises(ValidationError):
        public_line_status(bad, now)
