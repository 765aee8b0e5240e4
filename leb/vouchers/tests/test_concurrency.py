"""Many callers entering the same PIN at once: exactly one redemption."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.db import connection, connections

from leb.topups.models import TopUpOrder
from leb.vouchers.actions import VoucherRefused, do_redeem_voucher
from leb.vouchers.models import Voucher, VoucherState

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: concurrent connections with row locks",
)


def race(contenders: int, attempt: Callable[[int], str]) -> list[str]:
    start = threading.Barrier(contenders)
    results: list[str] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            results.append(attempt(n))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_one_voucher_entered_on_many_lines_at_once_is_redeemed_once(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=1)
    contenders = 8
    lines = [make_line() for _ in range(contenders)]

    def attempt(n: int) -> str:
        line = lines[n]
        try:
            do_redeem_voucher(
                line=line,
                pin=made.pins[0],
                channel="ussd",
                lockout_keys={"line": str(line.pk)},
                now=now,
            )
        except VoucherRefused as exc:
            return str(exc.code)
        return "ok"

    # when
    results = race(contenders, attempt)

    # then
    assert sorted(results) == ["ok"] + ["pin_invalid"] * (contenders - 1)
    assert TopUpOrder.objects.count() == 1
    voucher = Voucher.objects.get()
    assert voucher.state == VoucherState.REDEEMED
    assert voucher.order_id == TopUpOrder.objects.get().pk
    ledger_ok()


@pytest.mark.postgres
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_one_line_entering_its_pin_twice_at_once_gets_one_order(
    make_batch: Callable[..., Any], make_line: Callable[..., Any], now: datetime, ledger_ok: Any
) -> None:
    # given
    made = make_batch(quantity=1)
    line = make_line()

    def attempt(n: int) -> str:
        result = do_redeem_voucher(
            line=line,
            pin=made.pins[0],
            channel="ivr",
            lockout_keys={"line": str(line.pk), "caller": f"+8529100000{n}"},
            now=now,
        )
        return "replayed" if result.replayed else "ok"

    # when
    results = race(4, attempt)

    # then
    assert sorted(results) == ["ok", "replayed", "replayed", "replayed"]
    assert TopUpOrder.objects.count() == 1
    ledger_ok()
