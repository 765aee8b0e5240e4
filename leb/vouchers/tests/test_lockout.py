"""Wrong PINs lock voucher entry, escalating, per line, caller, account and
address; a locked key learns nothing, not even from a right PIN."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.topups.models import TopUpOrder
from leb.vouchers import pins
from leb.vouchers.actions import VoucherRefused, do_redeem_voucher

pytestmark = pytest.mark.django_db


def attempt(line: Any, pin: str, now: datetime, keys: dict[str, str]) -> str:
    try:
        do_redeem_voucher(line=line, pin=pin, channel="ivr", lockout_keys=keys, now=now)
    except VoucherRefused as exc:
        return str(exc.code)
    return "ok"


def wrong_pin() -> str:
    return pins.new_pin(with_check_digit=True)


def test_five_wrong_pins_lock_for_fifteen_minutes_even_for_the_right_pin(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch()
    line = make_line()
    keys = {"line": str(line.pk), "caller": "+85291234567"}
    codes = [attempt(line, wrong_pin(), now, keys) for _ in range(5)]

    # when
    locked = attempt(line, made.pins[0], now + timedelta(minutes=14), keys)
    unlocked = attempt(line, made.pins[0], now + timedelta(minutes=15, seconds=1), keys)

    # then
    assert codes == ["pin_invalid"] * 5
    assert locked == "locked"
    assert unlocked == "ok"
    assert TopUpOrder.objects.count() == 1


def test_the_lock_tells_how_long_it_runs(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    make_batch()
    line = make_line()
    keys = {"line": str(line.pk)}
    for _ in range(5):
        attempt(line, wrong_pin(), now, keys)

    # when
    with pytest.raises(VoucherRefused) as caught:
        do_redeem_voucher(line=line, pin=wrong_pin(), channel="web", lockout_keys=keys, now=now)

    # then
    assert caught.value.code == "locked"
    assert caught.value.retry_after == 15 * 60
    assert "15" in " ".join(caught.value.messages)


def test_locks_escalate_with_more_failures(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    make_batch()
    line = make_line()
    keys = {"line": str(line.pk)}
    at = now
    expected = [15, 30, 60, 24 * 60]

    for minutes in expected:
        # when five more failures arrive after the previous lock ran out
        for _ in range(5):
            assert attempt(line, wrong_pin(), at, keys) == "pin_invalid"

        # then the lock is longer each time
        assert attempt(line, wrong_pin(), at + timedelta(minutes=minutes - 1), keys) == "locked"
        at += timedelta(minutes=minutes, seconds=1)
        assert attempt(line, "12", at, keys) == "pin_format"


def test_failures_count_against_every_key(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given one address trying PINs on five different lines
    made = make_batch()
    lines = [make_line() for _ in range(6)]
    for line in lines[:5]:
        attempt(line, wrong_pin(), now, {"line": str(line.pk), "ip": "198.51.100.7"})

    # when
    from_same_address = attempt(
        lines[5], made.pins[0], now, {"line": str(lines[5].pk), "ip": "198.51.100.7"}
    )
    from_elsewhere = attempt(
        lines[5], made.pins[0], now, {"line": str(lines[5].pk), "ip": "203.0.113.9"}
    )

    # then
    assert from_same_address == "locked"
    assert from_elsewhere == "ok"


def test_a_locked_line_is_locked_from_every_address(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch()
    line = make_line()
    for n in range(5):
        attempt(line, wrong_pin(), now, {"line": str(line.pk), "ip": f"192.0.2.{n}"})

    # when
    result = attempt(line, made.pins[0], now, {"line": str(line.pk), "ip": "192.0.2.200"})

    # then
    assert result == "locked"


def test_typos_and_wrong_currency_do_not_count(
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    uk_policy: Any,
    now: datetime,
) -> None:
    # given
    made = make_batch()
    gbp_line = make_line(policy=uk_policy, currency="GBP")
    keys = {"line": str(gbp_line.pk), "user": "42"}

    # when
    codes = [attempt(gbp_line, "1234", now, keys) for _ in range(6)]
    codes += [attempt(gbp_line, made.pins[0], now, keys) for _ in range(6)]

    # then
    assert set(codes) == {"pin_format", "currency_mismatch"}


def test_a_right_pin_clears_the_count_of_the_line_but_not_of_the_address(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given four failures from one address on one line
    made = make_batch()
    line = make_line()
    keys = {"line": str(line.pk), "ip": "198.51.100.1"}
    for _ in range(4):
        attempt(line, wrong_pin(), now, keys)
    assert attempt(line, made.pins[0], now, keys) == "ok"

    # when
    other_line = make_line()
    line_again = attempt(line, wrong_pin(), now, {"line": str(line.pk)})
    address_again = attempt(
        other_line, wrong_pin(), now, {"line": str(other_line.pk), "ip": "198.51.100.1"}
    )
    after = attempt(other_line, made.pins[1], now, {"line": str(other_line.pk)})

    # then the address reached five failures; the line only one since the success
    assert line_again == "pin_invalid"
    assert address_again == "pin_invalid"
    assert attempt(line, made.pins[2], now, {"ip": "198.51.100.1"}) == "locked"
    assert after == "ok"
