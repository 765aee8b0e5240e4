"""Redemption: the happy path, replays, every refusal (which writes nothing)
and the books."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db.models import Sum

from leb.catalog.models import Promotion
from leb.ledger.models import Account, Transfer
from leb.ledger.queries import balance_of
from leb.lines.models import Line, LineStatus
from leb.topups.models import OrderStatus, TopUpOrder
from leb.vouchers import pins
from leb.vouchers.actions import (
    Redemption,
    VoucherRefused,
    do_block_vouchers,
    do_redeem_voucher,
    serial_range,
)
from leb.vouchers.models import Voucher, VoucherState

pytestmark = pytest.mark.django_db


def redeem(line: Line, pin: str, now: datetime, **keys: str) -> Redemption:
    return do_redeem_voucher(
        line=line,
        pin=pin,
        channel="web",
        lockout_keys={"line": str(line.pk), **keys},
        now=now,
    )


def snapshot(line: Line) -> tuple[Any, ...]:
    line.refresh_from_db()
    return (
        TopUpOrder.objects.count(),
        Transfer.objects.count(),
        list(Voucher.objects.order_by("pk").values_list("state", "line_id", "order_id")),
        line.valid_until,
        line.status,
    )


def wallet_balance(line: Line) -> int:
    wallet = Line.objects.get(pk=line.pk).wallet
    assert wallet is not None
    return balance_of(wallet)


def account_balance(code: str) -> int:
    account = Account.objects.filter(code=code).first()
    return balance_of(account) if account else 0


def test_a_voucher_tops_up_the_line_through_an_order(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(value=10000)
    line = make_line()
    before = line.valid_until

    # when
    result = redeem(line, made.pins[0], now)

    # then
    order = result.order
    assert not result.replayed
    assert order.channel == "voucher"
    assert order.status == OrderStatus.FULFILLED
    assert order.actor == "voucher:web"
    assert order.idempotency_key == f"voucher:{made.serials[0]}:redeem"
    assert order.payment_provider == "voucher"
    assert order.payment_reference == made.serials[0]
    assert order.receipt_number
    line.refresh_from_db()
    assert line.valid_until == order.valid_until_after
    assert line.valid_until > (before or now)
    assert balance_of(line.wallet) == 10000
    voucher = Voucher.objects.get(serial=made.serials[0])
    assert voucher.state == VoucherState.REDEEMED
    assert voucher.line_id == line.pk
    assert voucher.order_id == order.pk
    assert voucher.redeemed_channel == "web"
    assert voucher.redeemed_at == now
    # 5 sold, 1 used: the rest is still owed to card holders
    assert account_balance("voucher_liability:HKD") == 4 * 10000
    assert account_balance("clearing:voucher:HKD") == 0
    assert account_balance("clearing:voucher-sales:shop:HKD") == -5 * 10000
    ledger_ok()


def test_spaces_dashes_and_full_width_digits_are_accepted(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch()
    line = make_line()
    pin = made.pins[0]
    typed = " " + "-".join(pin[i : i + 4] for i in range(0, 16, 4)) + " "
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in made.pins[1])

    # when
    first = redeem(line, typed, now)
    second = redeem(line, full_width, now)

    # then
    assert first.voucher.serial == made.serials[0]
    assert second.voucher.serial == made.serials[1]


def test_a_plan_voucher_gives_the_plans_credit_and_validity(
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given
    made = make_batch(plan=hkd_plan, currency=None)
    line = make_line()

    # when
    result = redeem(line, made.pins[0], now)

    # then
    assert made.batch.value == hkd_plan.price
    assert result.order.plan_id == hkd_plan.pk
    assert result.order.quote["plan_days"] == 180
    assert wallet_balance(line) == hkd_plan.credit
    ledger_ok()


def test_a_discount_promotion_leaves_the_difference_as_voucher_surplus(
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given a voucher printed at the plan's price, then a 10% discount on it
    made = make_batch(plan=hkd_plan, currency=None)
    Promotion.objects.create(
        code="ten-off",
        name_en="10% off",
        name_zh_hans="九折",
        name_zh_hant="九折",
        currency="HKD",
        discount_percent=10,
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=1),
    )
    line = make_line()

    # when
    result = redeem(line, made.pins[0], now)

    # then the card holder gets the plan; the voucher's whole value is used up
    assert result.order.price == 4500
    assert wallet_balance(line) == hkd_plan.credit
    assert account_balance("revenue:voucher-surplus:HKD") == 500
    assert account_balance("clearing:voucher:HKD") == 0
    ledger_ok()


def test_a_price_rise_after_printing_is_paid_by_the_operator(
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    ledger_ok: Any,
) -> None:
    # given
    made = make_batch(plan=hkd_plan, currency=None)
    hkd_plan.price = 6000
    hkd_plan.save()
    line = make_line()

    # when
    result = redeem(line, made.pins[0], now)

    # then
    assert result.order.price == 6000
    assert account_balance("promotion_expense:HKD") == -1000
    assert account_balance("clearing:voucher:HKD") == 0
    ledger_ok()


def test_the_same_line_entering_the_pin_again_gets_the_first_redemption(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch()
    line = make_line()
    first = redeem(line, made.pins[0], now)
    before = snapshot(line)

    # when
    again = redeem(line, made.pins[0], now + timedelta(minutes=1))

    # then
    assert again.replayed
    assert again.order.pk == first.order.pk
    assert snapshot(line) == before
    ledger_ok()


def refused(line: Line, pin: str, now: datetime, **keys: str) -> VoucherRefused:
    with pytest.raises(VoucherRefused) as caught:
        redeem(line, pin, now, **keys)
    return caught.value


def failures(line: Line) -> int:
    from leb.security.lockouts import key_hash
    from leb.security.models import Lockout

    row = Lockout.objects.filter(
        scope="voucher_pin", key_hash=key_hash("voucher_pin", f"line:{line.pk}")
    ).first()
    return row.failures if row else 0


@pytest.mark.parametrize(
    "typed",
    ["1234", "12345678901234567", "1234abcd56789012", "", "\uff11\uff12\uff13\uff14"],
    ids=["short", "long", "letters", "empty", "full-width-short"],
)
def test_a_malformed_pin_is_a_format_error_and_not_a_failure(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, typed: str
) -> None:
    # given
    make_batch()
    line = make_line()
    before = snapshot(line)

    # when
    error = refused(line, typed, now)

    # then
    assert error.code == "pin_format"
    assert snapshot(line) == before
    assert failures(line) == 0


def test_a_luhn_typo_is_a_format_error_when_every_batch_has_check_digits(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given a real PIN with one digit changed
    made = make_batch(luhn=True)
    line = make_line()
    pin = made.pins[0]
    typo = pin[:3] + str((int(pin[3]) + 1) % 10) + pin[4:]
    assert not pins.luhn_ok(typo)
    before = snapshot(line)

    # when
    error = refused(line, typo, now)

    # then
    assert error.code == "pin_format"
    assert snapshot(line) == before
    assert failures(line) == 0


def test_a_luhn_failure_counts_when_a_batch_without_check_digits_is_live(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given: PINs of this batch may fail Luhn and still be real
    made = make_batch(luhn=False)
    line = make_line()
    unknown = next(
        p for p in (f"{n:016d}" for n in range(10**15, 10**15 + 20)) if not pins.luhn_ok(p)
    )
    assert unknown not in made.pins

    # when
    error = refused(line, unknown, now)

    # then
    assert error.code == "pin_invalid"
    assert failures(line) == 1


def test_pins_of_a_batch_without_check_digits_are_redeemable(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch(luhn=False, quantity=20)
    line = make_line()

    # when
    results = [redeem(line, pin, now) for pin in made.pins]

    # then
    assert len({r.order.pk for r in results}) == 20


def test_unknown_and_someone_elses_redeemed_pin_get_the_same_answer(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch()
    first_line, other_line = make_line(), make_line()
    redeem(first_line, made.pins[0], now)
    unknown = pins.new_pin(with_check_digit=True)
    before = snapshot(other_line)

    # when
    used = refused(other_line, made.pins[0], now)
    missing = refused(other_line, unknown, now)

    # then
    assert used.code == missing.code == "pin_invalid"
    assert used.messages == missing.messages
    assert snapshot(other_line) == before
    assert failures(other_line) == 2
    ledger_ok()


def test_an_unsold_voucher_is_not_valid_yet(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch(activate=False)
    line = make_line()
    before = snapshot(line)

    # when
    error = refused(line, made.pins[0], now)

    # then
    assert error.code == "pin_invalid"
    assert snapshot(line) == before


def test_an_expired_voucher_is_refused_with_its_own_message(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given: usable through its expiry date, not a day later
    made = make_batch(expires_on=(now + timedelta(days=10)).date())
    later = now + timedelta(days=12)
    line = make_line(at=later - timedelta(days=1))
    before = snapshot(line)

    # when
    error = refused(line, made.pins[0], later)

    # then
    assert error.code == "voucher_expired"
    assert "expired" in " ".join(error.messages)
    assert snapshot(line) == before


def test_a_blocked_voucher_is_refused(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch()
    do_block_vouchers(
        serial_range(made.serials[0], made.serials[1]), reason="stolen", actor="staff:t", now=now
    )
    line = make_line()
    before = snapshot(line)

    # when
    error = refused(line, made.pins[1], now)

    # then
    assert error.code == "voucher_blocked"
    assert snapshot(line) == before
    ledger_ok()


def test_a_voucher_in_another_currency_is_refused(
    make_batch: Callable[..., Any],
    make_line: Callable[..., Any],
    uk_policy: Any,
    now: datetime,
) -> None:
    # given
    made = make_batch()
    line = make_line(policy=uk_policy, currency="GBP")
    before = snapshot(line)

    # when
    error = refused(line, made.pins[0], now)

    # then
    assert error.code == "currency_mismatch"
    assert snapshot(line) == before
    assert failures(line) == 0
    assert Voucher.objects.get(serial=made.serials[0]).state == VoucherState.ACTIVE


def test_a_terminated_line_cannot_take_a_voucher(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given a line long past its validity, grace and suspension
    made = make_batch(expires_on=(now + timedelta(days=700)).date())
    line = make_line()
    later = now + timedelta(days=400)
    before = snapshot(line)

    # when
    error = refused(line, made.pins[0], later)

    # then
    assert error.code == "line_not_eligible"
    assert snapshot(line) == before
    assert Voucher.objects.get(serial=made.serials[0]).state == VoucherState.ACTIVE


def test_a_line_in_inventory_cannot_take_a_voucher(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch()
    line = make_line(activate=False)
    assert line.status == LineStatus.INVENTORY

    # when
    error = refused(line, made.pins[0], now)

    # then
    assert error.code == "line_not_eligible"
    assert TopUpOrder.objects.count() == 0


def test_a_withdrawn_plan_makes_the_voucher_unavailable_and_writes_nothing(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], hkd_plan: Any, now: datetime
) -> None:
    # given
    made = make_batch(plan=hkd_plan, currency=None)
    hkd_plan.is_active = False
    hkd_plan.save()
    line = make_line()
    before = snapshot(line)

    # when
    error = refused(line, made.pins[0], now)

    # then
    assert error.code == "voucher_unavailable"
    assert snapshot(line) == before


def test_the_books_after_many_redemptions(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=8, value=5000)
    lines = [make_line() for _ in range(4)]

    # when
    for i, pin in enumerate(made.pins[:6]):
        redeem(lines[i % 4], pin, now)

    # then
    wallets = Account.objects.filter(code__startswith="wallet:").aggregate(s=Sum("balance"))["s"]
    assert wallets == 6 * 5000
    assert account_balance("voucher_liability:HKD") == 2 * 5000
    ledger_ok()


# --- The validity cap --------------------------------------------------------------


@pytest.fixture
def keep_plan(db: Any) -> Any:
    """A days-only plan: 180 days, no credit."""
    from leb.catalog.models import Plan

    return Plan.objects.create(
        code="hk-keep-180",
        name_en="Keep 180 days",
        name_zh_hans="保号180天",
        name_zh_hant="保號180日",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )


def at_the_cap(line: Line, now: datetime) -> Line:
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])
    return line


def test_a_voucher_that_would_add_nothing_is_refused_and_stays_unused(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], keep_plan: Any, now: datetime
) -> None:
    # given a days-only plan voucher and a line already valid until its cap
    made = make_batch(plan=keep_plan, currency=None)
    line = at_the_cap(make_line(), now)
    before = snapshot(line)

    # when it is redeemed
    error = refused(line, made.pins[0], now)

    # then it is refused with its own message, and the voucher is still usable
    assert error.code == "adds_nothing"
    assert "Your voucher was not used" in error.messages[0]
    assert snapshot(line) == before
    assert Voucher.objects.get(serial=made.serials[0]).state == VoucherState.ACTIVE
    # and it is not counted as a wrong PIN: the same PIN works once the line has room
    line.valid_until = now + timedelta(days=10)
    line.save(update_fields=["valid_until"])
    assert redeem(line, made.pins[0], now).order.status == OrderStatus.FULFILLED


def test_a_voucher_that_adds_fewer_days_records_the_days_really_added(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], keep_plan: Any, now: datetime
) -> None:
    # given a line valid 300 more days (cap 365) and a 180-day voucher
    made = make_batch(plan=keep_plan, currency=None)
    line = make_line()
    line.valid_until = now + timedelta(days=300)
    line.save(update_fields=["valid_until"])

    # when
    result = redeem(line, made.pins[0], now)

    # then the order knows it added 65 days, not 180
    assert result.order.days_added == 65
    assert result.order.quote["plan_days"] == 180
