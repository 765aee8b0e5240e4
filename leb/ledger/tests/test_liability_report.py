"""The prepaid liability and breakage report adds up the ledger: on a
scenario with top-ups, a voucher sale, a redemption, a forfeiture and a
block, each figure equals the sum worked out by hand, each closing balance
equals the accounts' balances, and months follow the operator's time zone.
Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leb.catalog.models import FreeAmountRule, Plan
from leb.ledger.models import Account, AccountKind
from leb.ledger.queries import (
    ReportRangeError,
    check_month_range,
    derived_balances,
    liability_report,
    parse_month,
)
from leb.lines.actions import sweep_lines
from leb.lines.models import NumberPolicy
from leb.testing import topup
from leb.vouchers.actions import (
    do_activate_batch,
    do_block_vouchers,
    do_generate_batch,
    do_redeem_voucher,
    serial_range,
)
from leb.vouchers.models import Distributor
from leb.vouchers.tests.helpers import read_export

pytestmark = pytest.mark.django_db

JUNE, JULY, AUGUST = date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1)


@pytest.fixture
def scenario(
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
    tmp_path: Path,
    ledger_ok: Callable[[], None],
) -> dict[str, Any]:
    """Hong Kong months (UTC+8), amounts in HKD cents:

    June: line A tops up 50.00, line C (a policy with one-day timers) 10.00;
    three vouchers of 100.00 are sold to a shop (300.00).
    July: line B redeems a voucher at 01:00 on 1 July Hong Kong time (still
    30 June in UTC): 100.00 off the vouchers, onto B's wallet; C terminates
    and the sweep forfeits its 10.00.
    August: line A tops up 50.00 again; a voucher is blocked (100.00).
    """
    FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[1000, 30]]
    )
    short = NumberPolicy.objects.create(
        code="short",
        name="Short",
        first_topup_days=1,
        grace_days=1,
        suspension_days=1,
        quarantine_days=1,
    )
    tiny = Plan.objects.create(
        code="hk-10",
        name_en="HK$10",
        name_zh_hans="10港元",
        name_zh_hant="10港元",
        currency="HKD",
        price=1000,
        credit=1000,
        validity_days=1,
    )
    line_a, line_b = make_line(), make_line()
    line_c = make_line(policy=short)
    topup(line_a, hkd_plan, now=now)
    topup(line_c, tiny, now=now)
    made = do_generate_batch(
        code="HK26",
        distributor=Distributor.objects.create(code="shop", name="Shop"),
        quantity=3,
        expires_on=date(2027, 6, 1),
        out=tmp_path / "HK26.csv",
        currency="HKD",
        value=10000,
        plan=None,
        luhn=True,
        actor="staff:test",
        now=now,
    )
    do_activate_batch(made.batch, actor="staff:test", now=now)
    rows = read_export(tmp_path / "HK26.csv")
    redeemed_at = datetime(2026, 6, 30, 17, 0, tzinfo=UTC)  # 1 July 01:00 in Hong Kong
    do_redeem_voucher(
        line=line_b,
        pin=rows[0]["pin"],
        channel="web",
        lockout_keys={"line": str(line_b.pk)},
        now=redeemed_at,
    )
    sweep_lines(datetime(2026, 7, 15, 4, 0, tzinfo=UTC))
    august = datetime(2026, 8, 10, 4, 0, tzinfo=UTC)
    topup(line_a, hkd_plan, now=august)
    do_block_vouchers(
        serial_range(rows[2]["serial"], rows[2]["serial"]),
        reason="lost",
        actor="staff:test",
        now=august,
    )
    ledger_ok()
    return {"lines": (line_a, line_b, line_c)}


def figures(report: Any, currency: str, key: str) -> list[tuple[Any, ...]]:
    [section] = [s for s in report.currencies[currency] if s.section.key == key]
    return [
        (
            f"{month.month:%Y-%m}",
            month.opening,
            {k: v for k, v in month.movements.items() if v},
            month.closing,
        )
        for month in section.months
    ]


def test_each_figure_is_the_hand_computed_sum_of_its_transfers(scenario: Any) -> None:
    # when the report covers June to August
    report = liability_report(JUNE, AUGUST)

    # then subscriber balances: 50 + 10 in June; B's voucher (100) and C's
    # forfeiture (-10) in July; A's second top-up in August
    assert figures(report, "HKD", "balances") == [
        ("2026-06", 0, {"topups": 6000}, 6000),
        ("2026-07", 6000, {"topups": 10000, "forfeited": -1000}, 15000),
        ("2026-08", 15000, {"topups": 5000}, 20000),
    ]
    # and breakage: C's 10.00 in July
    assert figures(report, "HKD", "breakage") == [
        ("2026-06", 0, {}, 0),
        ("2026-07", 0, {"forfeited": 1000}, 1000),
        ("2026-08", 1000, {}, 1000),
    ]
    # and vouchers: 300 sold, 100 redeemed, 100 blocked
    assert figures(report, "HKD", "vouchers") == [
        ("2026-06", 0, {"sold": 30000}, 30000),
        ("2026-07", 30000, {"redeemed": -10000}, 20000),
        ("2026-08", 20000, {"blocked": -10000}, 10000),
    ]


def test_the_closing_balances_are_the_accounts_balances(scenario: Any) -> None:
    # given the accounts behind each section, and their balances from the transfers
    report = liability_report(JUNE, AUGUST)
    derived = derived_balances()
    for section in report.currencies["HKD"]:
        accounts = Account.objects.filter(kind=section.section.kind, currency="HKD")
        # then the report's last closing is their sum
        assert section.closing == sum(derived.get(a.pk, 0) for a in accounts), section.section.key
        assert section.accounts == accounts.count()
    wallets = report.currencies["HKD"][0]
    assert wallets.section.kind == AccountKind.WALLET
    assert wallets.accounts == 3
    assert wallets.codes == {"forfeit": "forfeited", "topup.credit": "topups"}
    assert report.currencies["HKD"][1].account_codes == "forfeited:HKD"
    assert report.currencies["HKD"][2].account_codes == "voucher_liability:HKD"


def test_a_later_range_opens_with_what_came_before(scenario: Any) -> None:
    report = liability_report(AUGUST, AUGUST)
    assert figures(report, "HKD", "balances") == [("2026-08", 15000, {"topups": 5000}, 20000)]
    assert figures(report, "HKD", "vouchers") == [("2026-08", 20000, {"blocked": -10000}, 10000)]


def test_the_report_takes_five_queries_whatever_the_range(scenario: Any) -> None:
    with CaptureQueriesContext(connection) as one_month:
        liability_report(JULY, JULY)
    with CaptureQueriesContext(connection) as three_years:
        report = liability_report(date(2024, 1, 1), date(2026, 12, 1))
    assert len(one_month) == len(three_years) == report.queries == 5


def test_an_empty_ledger_gives_an_empty_report(db: Any) -> None:
    assert liability_report(JUNE, AUGUST).currencies == {}


@pytest.mark.parametrize(
    ("first", "last", "code"),
    [("2026-8", "2026-09", "month_format"), ("2026-13", "2026-12", "month_format")],
)
def test_a_badly_written_month_is_refused(first: str, last: str, code: str) -> None:
    with pytest.raises(ReportRangeError) as refused:
        parse_month(first)
    assert refused.value.code == code
    assert parse_month(last).day == 1


def test_a_backwards_or_too_long_range_is_refused() -> None:
    with pytest.raises(ReportRangeError) as backwards:
        check_month_range(AUGUST, JUNE)
    assert backwards.value.code == "month_order"
    with pytest.raises(ReportRangeError) as too_long:
        check_month_range(date(2020, 1, 1), AUGUST)
    assert too_long.value.code == "month_range"


def test_the_command_prints_the_same_table(scenario: Any) -> None:
    out = StringIO()
    call_command("report", "liability", "--from", "2026-06", "--to", "2026-08", stdout=out)
    text = out.getvalue()
    assert "Prepaid liability and breakage, 2026-06 to 2026-08 (Asia/Hong_Kong)" in text
    assert "HKD Subscriber balances (deferred revenue) [wallet:line:*, 3 account(s)]" in text
    balances = text.split("HKD Subscriber balances")[1].split("\n\n")[0]
    july = next(line for line in balances.splitlines() if line.startswith("2026-07"))
    assert july.split() == [
        "2026-07",
        "60.00",
        "100.00",
        "0.00",
        "0.00",
        "0.00",
        "0.00",
        "-10.00",
        "150.00",
    ]
    vouchers = text.split("HKD Voucher liability")[1]
    assert "voucher_liability:HKD" in vouchers
    assert "range" in vouchers and "100.00" in vouchers


def test_the_command_refuses_a_bad_month_with_a_message(db: Any) -> None:
    with pytest.raises(CommandError, match="Enter a month as YYYY-MM"):
        call_command("report", "liability", "--from", "June", stdout=StringIO())
    with pytest.raises(CommandError, match="must not come after"):
        call_command(
            "report", "liability", "--from", "2026-08", "--to", "2026-06", stdout=StringIO()
        )


def test_the_command_defaults_to_the_last_six_months(db: Any) -> None:
    from leb.common import clock

    out = StringIO()
    with clock.frozen(datetime(2026, 3, 15, tzinfo=UTC) + timedelta(hours=1)):
        call_command("report", "liability", stdout=out)
    assert "2025-10 to 2026-03" in out.getvalue()


def test_a_partial_refund_is_a_refund_of_the_balance(
    make_line: Callable[..., Any], hkd_plan: Any, ledger_ok: Callable[[], None]
) -> None:
    from leb.topups.actions import do_refund_order_part, partial_refund_legs

    # given a top-up in June, refunded in part later that month (a dispute)
    at = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)
    order = topup(make_line(), hkd_plan, now=at)
    do_refund_order_part(
        order,
        amount=1000,
        key="dispute",
        reason="disputed",
        actor="staff:x",
        now=at + timedelta(days=1),
    )
    from_wallet, _from_fee = partial_refund_legs(order, 1000)

    # when the report covers June
    report = liability_report(JUNE, JUNE)

    # then the wallet's share of the refund is in the refunds column, not "other"
    ((_month, opening, movements, closing),) = figures(report, "HKD", "balances")
    assert from_wallet > 0 and movements["refunds"] == -from_wallet
    assert "other" not in movements
    assert closing == opening + sum(movements.values())
    ledger_ok()
