"""Generation (hashes only, the one-time export), states, activation,
blocking by serial range and expiry, with their books and audit rows."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leb.audit.models import AuditEntry
from leb.ledger.models import Account
from leb.ledger.queries import balance_of
from leb.vouchers import pins
from leb.vouchers.actions import (
    VoucherError,
    do_activate_batch,
    do_block_vouchers,
    do_distribute_batch,
    do_generate_batch,
    do_redeem_voucher,
    expire_vouchers,
    serial_range,
)
from leb.vouchers.models import BatchState, Voucher, VoucherBatch, VoucherState

pytestmark = pytest.mark.django_db


def balance(code: str) -> int:
    account = Account.objects.filter(code=code).first()
    return balance_of(account) if account else 0


def test_generation_stores_only_hashes_and_writes_the_export_once(
    make_batch: Callable[..., Any], now: datetime
) -> None:
    # when
    made = make_batch(code="HK2606", quantity=12, value=10000, activate=False)

    # then the file has one row per voucher, for the printer
    assert len(made.rows) == 12
    assert made.rows[0] == {
        "serial": "HK2606-0000018",
        "pin": made.rows[0]["pin"],
        "value": "100.00",
        "currency": "HKD",
        "plan": "",
        "expires": (now + timedelta(days=365)).date().isoformat(),
    }
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    # and the database only the HMAC of each PIN
    vouchers = list(Voucher.objects.order_by("number"))
    assert [v.serial for v in vouchers] == made.serials
    assert [v.number for v in vouchers] == list(range(1, 13))
    for voucher, pin in zip(vouchers, made.pins, strict=True):
        assert voucher.pin_hash == pins.hash_pin(pin)
        assert pin not in str(Voucher.objects.filter(pk=voucher.pk).values().get())
    assert len(set(made.pins)) == 12
    assert made.batch.exported_at == now
    assert made.batch.state == BatchState.GENERATED
    assert {v.state for v in vouchers} == {VoucherState.GENERATED}
    entry = AuditEntry.objects.get(action="voucher.batch.generate")
    assert entry.data["quantity"] == 12
    assert all(pin not in str(entry.data) for pin in made.pins)


def test_check_digit_pins_pass_luhn(make_batch: Callable[..., Any]) -> None:
    # when
    made = make_batch(luhn=True, quantity=50)

    # then
    assert all(len(p) == 16 and p.isdigit() and pins.luhn_ok(p) for p in made.pins)


def test_serials_carry_a_check_digit() -> None:
    # given
    serial = pins.make_serial("HK2606", 123)

    # then
    assert serial == "HK2606-0001230"
    assert pins.parse_serial(serial) == pins.Serial("HK2606", 123)
    assert pins.parse_serial(" hk2606-0001230 ") == pins.Serial("HK2606", 123)
    assert pins.parse_serial("HK2606-0001231") is None
    assert pins.parse_serial("HK2606-123") is None


def test_a_plan_batch_takes_the_plans_price_and_currency(
    make_batch: Callable[..., Any], hkd_plan: Any
) -> None:
    # when
    made = make_batch(plan=hkd_plan, currency=None)

    # then
    assert (made.batch.value, made.batch.currency, made.batch.plan_id) == (
        5000,
        "HKD",
        hkd_plan.pk,
    )
    assert made.rows[0]["plan"] == "hk-50"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"code": "hk 1"}, "code_format"),
        ({"quantity": 0}, "quantity_range"),
        ({"value": None}, "value_or_plan"),
        ({"value": 0}, "value_invalid"),
        ({"value": 500}, "amount_range"),
        ({"currency": "XYZ"}, "currency_invalid"),
        ({"currency": "GBP"}, "amount_unavailable"),
        ({"expires_on": date(2026, 6, 1)}, "expiry_past"),
    ],
)
def test_a_bad_batch_request_writes_nothing(
    distributor: Any,
    free_rule: Any,
    tmp_path: Path,
    now: datetime,
    change: dict[str, Any],
    code: str,
) -> None:
    # given
    request: dict[str, Any] = {
        "code": "HK01",
        "distributor": distributor,
        "quantity": 3,
        "expires_on": date(2027, 6, 1),
        "out": tmp_path / "out.csv",
        "currency": "HKD",
        "value": 10000,
        "actor": "staff:t",
        "now": now,
        **change,
    }

    # when
    with pytest.raises(VoucherError) as caught:
        do_generate_batch(**request)

    # then
    assert caught.value.code == code
    assert VoucherBatch.objects.count() == 0
    assert list(tmp_path.iterdir()) == []


def test_a_plan_not_sold_on_the_voucher_channel_is_refused(
    distributor: Any, hkd_plan: Any, tmp_path: Path, now: datetime
) -> None:
    # given
    hkd_plan.channels = ["web"]
    hkd_plan.save()

    # when
    with pytest.raises(VoucherError) as caught:
        do_generate_batch(
            code="HK01",
            distributor=distributor,
            quantity=1,
            expires_on=date(2027, 1, 1),
            out=tmp_path / "x.csv",
            plan=hkd_plan,
            actor="t",
            now=now,
        )

    # then
    assert caught.value.code == "plan_channel"
    assert not Voucher.objects.exists()


def test_the_export_is_never_overwritten_and_codes_are_unique(
    make_batch: Callable[..., Any], distributor: Any, tmp_path: Path, now: datetime
) -> None:
    # given
    made = make_batch(code="HK01")
    content = made.path.read_text()

    # when
    with pytest.raises(VoucherError) as exists:
        do_generate_batch(
            code="HK02",
            distributor=distributor,
            quantity=1,
            expires_on=date(2027, 1, 1),
            out=made.path,
            value=10000,
            currency="HKD",
            actor="t",
            now=now,
        )
    with pytest.raises(VoucherError) as taken:
        do_generate_batch(
            code="HK01",
            distributor=distributor,
            quantity=1,
            expires_on=date(2027, 1, 1),
            out=tmp_path / "new.csv",
            value=10000,
            currency="HKD",
            actor="t",
            now=now,
        )

    # then
    assert exists.value.code == "out_exists"
    assert taken.value.code == "code_taken"
    assert made.path.read_text() == content
    assert VoucherBatch.objects.count() == 1


def test_generation_reports_progress_in_chunks(
    distributor: Any, free_rule: Any, tmp_path: Path, now: datetime
) -> None:
    # given
    seen: list[int] = []

    # when
    do_generate_batch(
        code="BIG",
        distributor=distributor,
        quantity=4500,
        expires_on=date(2027, 1, 1),
        out=tmp_path / "big.csv",
        value=10000,
        currency="HKD",
        luhn=True,
        actor="t",
        now=now,
        progress=seen.append,
    )

    # then
    assert seen == [2000, 2000, 500]
    assert Voucher.objects.count() == 4500
    assert Voucher.objects.values("pin_hash").distinct().count() == 4500


def test_distribution_then_activation_books_the_sale(
    make_batch: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=4, value=10000, activate=False)

    # when
    do_distribute_batch(made.batch, actor="staff:a", now=now)
    activated = do_activate_batch(made.batch, actor="staff:a", now=now)
    again = do_activate_batch(made.batch, actor="staff:a", now=now)

    # then
    made.batch.refresh_from_db()
    assert (activated, again) == (4, 0)
    assert made.batch.state == BatchState.ACTIVE
    assert set(Voucher.objects.values_list("state", flat=True)) == {VoucherState.ACTIVE}
    assert balance("voucher_liability:HKD") == 40000
    assert balance("clearing:voucher-sales:shop:HKD") == -40000
    actions = list(AuditEntry.objects.values_list("action", "actor"))
    assert ("voucher.batch.distribute", "staff:a") in actions
    assert ("voucher.batch.activate", "staff:a") in actions
    ledger_ok()


def test_part_of_a_batch_can_be_activated(
    make_batch: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=10, activate=False)

    # when
    first = do_activate_batch(made.batch, actor="s", first=3, last=5, now=now)
    rest = do_activate_batch(made.batch, actor="s", now=now)

    # then
    assert (first, rest) == (3, 7)
    assert balance("voucher_liability:HKD") == 10 * 10000
    ledger_ok()


def test_blocking_a_range_spares_redeemed_vouchers_and_returns_sold_value(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given five active vouchers, one of them redeemed
    made = make_batch(quantity=5, value=10000)
    line = make_line()
    do_redeem_voucher(
        line=line, pin=made.pins[1], channel="web", lockout_keys={"line": str(line.pk)}, now=now
    )

    # when serials 1..4 are blocked
    result = do_block_vouchers(
        serial_range(made.serials[0], made.serials[3]),
        reason="box lost in transit",
        actor="staff:b",
        now=now,
    )

    # then
    states = list(Voucher.objects.order_by("number").values_list("state", flat=True))
    assert states == ["blocked", "redeemed", "blocked", "blocked", "active"]
    assert (result.blocked, result.released) == (3, 30000)
    assert balance("voucher_liability:HKD") == 10000
    entry = AuditEntry.objects.get(action="voucher.block")
    assert entry.actor == "staff:b"
    assert entry.data["reason"] == "box lost in transit"
    assert entry.data["vouchers"] == 3
    ledger_ok()


def test_blocking_unsold_vouchers_moves_no_money(
    make_batch: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=3, activate=False)

    # when
    result = do_block_vouchers(
        serial_range(made.serials[0], made.serials[2]), reason="misprint", actor="s", now=now
    )
    repeat = do_block_vouchers(
        serial_range(made.serials[0], made.serials[2]), reason="misprint", actor="s", now=now
    )

    # then
    assert (result.blocked, result.released, repeat.blocked) == (3, 0, 0)
    assert not Account.objects.filter(code="voucher_liability:HKD").exists()
    ledger_ok()


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [
        ("HK01-0000018", "HK01-0000019", "serial_format"),
        ("nonsense", "", "serial_format"),
        ("HK01-0000026", "HK01-0000018", "serial_order"),
        ("HK01-0000018", "HK02-0000026", "serial_batches"),
        ("ZZ99-0000018", "", "batch_unknown"),
    ],
)
def test_bad_serial_ranges_are_refused(
    make_batch: Callable[..., Any], first: str, last: str, code: str
) -> None:
    # given
    make_batch(code="HK01")

    # when
    with pytest.raises(VoucherError) as caught:
        serial_range(first, last)

    # then
    assert caught.value.code == code


def test_blocking_needs_a_reason(make_batch: Callable[..., Any], now: datetime) -> None:
    # given
    made = make_batch()

    # when
    with pytest.raises(VoucherError) as caught:
        do_block_vouchers(serial_range(made.serials[0], ""), reason=" ", actor="s", now=now)

    # then
    assert caught.value.code == "reason_required"
    assert not Voucher.objects.filter(state=VoucherState.BLOCKED).exists()


def test_expiry_books_sold_value_as_breakage(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given one sold batch (one voucher used) and one unsold batch
    sold = make_batch(quantity=3, value=10000, expires_on=(now + timedelta(days=5)).date())
    unsold = make_batch(quantity=2, activate=False, expires_on=(now + timedelta(days=5)).date())
    line = make_line()
    do_redeem_voucher(
        line=line, pin=sold.pins[0], channel="web", lockout_keys={"line": str(line.pk)}, now=now
    )

    # when
    early = expire_vouchers(now + timedelta(days=5))
    result = expire_vouchers(now + timedelta(days=7))
    repeat = expire_vouchers(now + timedelta(days=8))

    # then
    assert early.vouchers == 0
    assert (result.vouchers, result.breakage) == (4, 20000)
    assert repeat.vouchers == 0
    assert list(Voucher.objects.order_by("pk").values_list("state", flat=True)) == [
        "redeemed",
        "expired",
        "expired",
        "expired",
        "expired",
    ]
    assert balance("voucher_liability:HKD") == 0
    assert balance("revenue:voucher-breakage:HKD") == 20000
    assert unsold.batch.vouchers.filter(state="expired").count() == 2
    ledger_ok()


def test_an_expired_batch_cannot_be_activated(
    make_batch: Callable[..., Any], now: datetime
) -> None:
    # given
    made = make_batch(activate=False, expires_on=(now + timedelta(days=3)).date())

    # when
    with pytest.raises(VoucherError) as caught:
        do_activate_batch(made.batch, actor="s", now=now + timedelta(days=5))

    # then
    assert caught.value.code == "batch_expired"
    assert not Voucher.objects.filter(state=VoucherState.ACTIVE).exists()


def test_the_periodic_task_expires_vouchers(
    make_batch: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    from leb.common import clock
    from leb.vouchers.tasks import expire_vouchers_task

    make_batch(quantity=2, expires_on=(now + timedelta(days=1)).date())

    # when
    with clock.frozen(now + timedelta(days=3)):
        expired = expire_vouchers_task.call()

    # then
    assert expired == 2
    ledger_ok()
