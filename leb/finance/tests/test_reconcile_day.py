"""The daily settlement: leb's ledger against the sandbox gateway's books on
demo-like data. A clean day has no mismatch; each planted fault is found
exactly once, as its own kind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from leb.audit.models import AuditEntry
from leb.finance.actions import SettlementError, do_reconcile_day
from leb.finance.models import Mismatch, MismatchKind, SettlementRun
from leb.finance.queries import LatestDay, latest_mismatch_counts, settlement_table
from leb.topups.actions import do_fulfil_order, do_mark_paid, do_refund_order

from .conftest import DAY

pytestmark = pytest.mark.django_db


def test_a_clean_day_reconciles_without_mismatch(clean_day: list[Any], ledger_ok: Any) -> None:
    # when the day is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then both sides agree: three captures and one refund
    assert (run.provider, run.currency, run.date) == ("sandbox", "HKD", DAY)
    assert (run.leb_captured, run.provider_captured) == (15000, 15000)
    assert (run.leb_refunded, run.provider_refunded) == (5000, 5000)
    assert (run.leb_captures, run.provider_captures) == (3, 3)
    assert (run.leb_refunds, run.provider_refunds) == (1, 1)
    assert (run.leb_pending, run.provider_pending, run.provider_fees) == (0, 0, 0)
    assert run.mismatch_count == 0 and not Mismatch.objects.exists()
    ledger_ok()


def test_reconciling_a_day_again_replaces_its_run_and_is_audited(clean_day: list[Any]) -> None:
    # given a reconciled day
    do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # when it is reconciled again
    (again,) = do_reconcile_day(DAY, "sandbox", actor="staff:boss")
    # then one run is left, the newest, and both runs were audited
    assert list(SettlementRun.objects.all()) == [again]
    assert again.actor == "staff:boss"
    entries = AuditEntry.objects.filter(action="settlement.reconcile").order_by("pk")
    assert [e.target for e in entries] == [f"settlement:sandbox:{DAY}"] * 2
    assert entries.last().data["replaced"] == 1  # type: ignore[union-attr]


def _only_mismatch() -> Mismatch:
    (mismatch,) = Mismatch.objects.all()
    return mismatch


def test_a_capture_never_settled_is_paid_not_fulfilled(
    clean_day: list[Any], pay: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given, on a clean day, a payment the gateway captured but whose webhook never came
    lost = pay(at_hour(15), settled=False)
    # when the day is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then exactly that payment is reported
    mismatch = _only_mismatch()
    assert mismatch.kind == MismatchKind.PAID_NOT_FULFILLED
    assert (mismatch.attempt_id, mismatch.order_id) == (lost.pk, lost.order_id)
    assert (mismatch.leb_amount, mismatch.provider_amount) == (None, 5000)
    assert (run.leb_captured, run.provider_captured, run.mismatch_count) == (15000, 20000, 1)


def test_a_top_up_without_a_capture_is_fulfilled_without_capture(
    clean_day: list[Any], make_order: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given, on a clean day, an order leb booked as paid by the sandbox that
    # the gateway never captured
    order = make_order(at_hour(7))
    do_mark_paid(
        order,
        amount=5000,
        currency="HKD",
        provider="sandbox",
        reference="sbx_ghost",
        now=at_hour(7),
    )
    do_fulfil_order(order, now=at_hour(7))
    # when the day is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then exactly that order is reported
    mismatch = _only_mismatch()
    assert mismatch.kind == MismatchKind.FULFILLED_WITHOUT_CAPTURE
    assert (mismatch.order_id, mismatch.reference) == (order.pk, "sbx_ghost")
    assert (mismatch.leb_amount, mismatch.provider_amount) == (5000, None)
    assert (run.leb_captured, run.provider_captured) == (20000, 15000)


def test_a_capture_for_another_amount_is_amount_differs(
    clean_day: list[Any], pay: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given, on a clean day, a payment the gateway captured for 1 HKD less
    short = pay(at_hour(13), captured_amount=4900)
    # when the day is reconciled
    do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then exactly that payment is reported with both amounts
    mismatch = _only_mismatch()
    assert mismatch.kind == MismatchKind.AMOUNT_DIFFERS
    assert mismatch.attempt_id == short.pk
    assert (mismatch.leb_amount, mismatch.provider_amount) == (5000, 4900)


def test_a_refund_only_in_the_books_is_refund_differs(
    clean_day: list[Any], at_hour: Callable[[float], datetime]
) -> None:
    # given, on a clean day, a top-up reversed in leb but never given back at the gateway
    attempt = clean_day[2]
    do_refund_order(attempt.order, reason="by hand", actor="staff:fin", now=at_hour(21))
    # when the day is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then exactly that refund is reported
    mismatch = _only_mismatch()
    assert mismatch.kind == MismatchKind.REFUND_DIFFERS
    assert (mismatch.order_id, mismatch.leb_amount, mismatch.provider_amount) == (
        attempt.order_id,
        5000,
        None,
    )
    assert (run.leb_refunded, run.provider_refunded) == (10000, 5000)


def test_a_payment_across_midnight_is_no_mismatch_on_either_day(
    pay: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given a payment the gateway captured a second before midnight and leb
    # booked a few seconds after it
    attempt = pay(at_hour(0) + timedelta(seconds=5), settled=True)
    state = {**attempt.provider_data["gateway"], "at": int(at_hour(0).timestamp()) - 1}
    attempt.provider_data = {**attempt.provider_data, "gateway": state}
    attempt.save(update_fields=["provider_data"])
    # when both days are reconciled
    (first,) = do_reconcile_day(DAY - timedelta(days=1), "sandbox", actor="staff:fin")
    (second,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then neither reports it: each side booked it on its own side of midnight
    assert (first.provider_captured, first.leb_captured) == (5000, 0)
    assert (second.provider_captured, second.leb_captured) == (0, 5000)
    assert not Mismatch.objects.exists()


def test_a_quiet_day_still_leaves_a_run() -> None:
    # when a day without payments is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then a run with nothing in it shows the day was checked
    assert (run.currency, run.leb_captured, run.provider_captured, run.mismatch_count) == (
        "",
        0,
        0,
        0,
    )


def test_a_day_not_over_is_refused(now: datetime) -> None:
    # when today is reconciled, then it is refused and nothing is written
    today = now.date()
    with pytest.raises(SettlementError) as raised:
        do_reconcile_day(today, "sandbox", actor="staff:fin")
    assert raised.value.code == "day_not_over"
    assert not SettlementRun.objects.exists()


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(SettlementError) as raised:
        do_reconcile_day(DAY, "moneybags", actor="staff:fin")
    assert raised.value.code == "provider_unknown"
    assert "not an enabled payment provider" in str(raised.value)
    assert not SettlementRun.objects.exists()


def test_a_provider_that_cannot_list_is_refused_clearly(settings: Any) -> None:
    # given an enabled provider without a transaction list
    settings.PAYMENT_PROVIDERS = ["sandbox", "bare"]
    settings.PAYMENT_PROVIDER_CLASSES = {"bare": "leb.finance.tests.providers.BareProvider"}
    # when its day is reconciled, then it is refused with the reason
    with pytest.raises(SettlementError) as raised:
        do_reconcile_day(DAY, "bare", actor="staff:fin")
    assert raised.value.code == "not_supported"
    assert not SettlementRun.objects.exists()
    # and reconciling every provider leaves it out
    runs = do_reconcile_day(DAY, actor="staff:fin")
    assert [run.provider for run in runs] == ["sandbox"]


def test_an_unreachable_provider_writes_nothing(settings: Any) -> None:
    settings.PAYMENT_PROVIDERS = ["sandbox", "down"]
    settings.PAYMENT_PROVIDER_CLASSES = {"down": "leb.finance.tests.providers.DownProvider"}
    with pytest.raises(SettlementError) as raised:
        do_reconcile_day(DAY, "down", actor="staff:fin")
    assert raised.value.code == "provider_unavailable"
    assert not SettlementRun.objects.exists()


def test_latest_mismatch_counts_and_the_table(
    clean_day: list[Any], pay: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> None:
    # given an older day with a mismatch and the latest day clean
    pay(at_hour(-10), settled=False)
    do_reconcile_day(DAY - timedelta(days=1), "sandbox", actor="staff:fin")
    do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    # then the figure counts the latest day only, and the table lists both days
    counts = latest_mismatch_counts()
    assert counts.total == 0
    assert counts.by_provider == {"sandbox": LatestDay(DAY, {})}
    assert [run.date for run in settlement_table()] == [DAY, DAY - timedelta(days=1)]
    assert [run.date for run in settlement_table(since=DAY)] == [DAY]
    # when the latest day gets a mismatch
    pay(at_hour(12), settled=False)
    do_reconcile_day(DAY, "sandbox", actor="staff:fin")
    assert latest_mismatch_counts().by_provider == {
        "sandbox": LatestDay(DAY, {MismatchKind.PAID_NOT_FULFILLED: 1})
    }


def test_no_runs_no_mismatches() -> None:
    assert latest_mismatch_counts().total == 0
    assert date.today() and settlement_table() == []


def test_partial_refunds_and_the_refund_that_completes_them_reconcile(
    pay: Callable[..., Any], at_hour: Callable[[float], datetime], ledger_ok: Any
) -> None:
    from leb.common import clock
    from leb.payments.actions import do_request_refund

    # given a payment refunded in part twice on the day (a dispute), and
    # another refunded in part, then in full, on the same day
    kept = pay(at_hour(1))
    completed = pay(at_hour(2))
    for hours, attempt, amount in ((3, kept, 1000), (4, kept, 500), (5, completed, 2000)):
        with clock.frozen(at_hour(hours)):
            do_request_refund(attempt, amount=amount, reason="disputed", actor="staff:fin")
    with clock.frozen(at_hour(6)):
        do_request_refund(completed, reason="disputed", actor="staff:fin")

    # when the day is reconciled
    (run,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin")

    # then leb's refunds (what its postings owe each payer) equal the gateway's
    assert run.leb_refunded == run.provider_refunded == 1000 + 500 + completed.amount
    assert (run.leb_refunds, run.provider_refunds) == (2, 4)
    assert run.mismatch_count == 0 and not Mismatch.objects.exists()
    ledger_ok()


def test_a_partial_refund_the_gateway_never_made_is_refund_differs(
    pay: Callable[..., Any], at_hour: Callable[[float], datetime], settings: Any
) -> None:
    from leb.common import clock
    from leb.payments.actions import do_request_refund

    # given a partial refund booked in leb while the gateway did not answer
    attempt = pay(at_hour(1))
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    with clock.frozen(at_hour(3)):
        do_request_refund(attempt, amount=1500, reason="disputed", actor="staff:fin")

    # when the day is reconciled
    do_reconcile_day(DAY, "sandbox", actor="staff:fin")

    # then exactly that refund is reported, for its amount
    mismatch = _only_mismatch()
    assert mismatch.kind == MismatchKind.REFUND_DIFFERS
    assert (mismatch.leb_amount, mismatch.provider_amount) == (1500, None)


def test_a_refund_made_at_the_provider_the_day_after_leb_booked_it_is_not_a_mismatch_then(
    pay: Callable[..., Any], at_hour: Callable[[float], datetime], settings: Any
) -> None:
    from leb.common import clock
    from leb.payments.actions import do_request_refund, do_retry_refund

    # given a partial refund booked in leb on DAY while the gateway did not
    # answer, and asked again successfully the next morning
    attempt = pay(at_hour(1))
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    with clock.frozen(at_hour(20)):
        refund = do_request_refund(attempt, amount=1500, reason="disputed", actor="staff:fin")
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    with clock.frozen(at_hour(24 + 10)):
        do_retry_refund(refund, actor="staff:fin")

    # when both days are reconciled
    later = at_hour(24 * 2 + 1)
    do_reconcile_day(DAY, "sandbox", actor="staff:fin", now=later)
    do_reconcile_day(DAY + timedelta(days=1), "sandbox", actor="staff:fin", now=later)

    # then DAY says what was true that day (booked in leb, not yet at the
    # gateway) and the next day's gateway refund is leb's own, not a mismatch
    mismatch = _only_mismatch()
    assert (mismatch.run.date, mismatch.kind) == (DAY, MismatchKind.REFUND_DIFFERS)
    assert (mismatch.leb_amount, mismatch.provider_amount) == (1500, None)


def test_refunds_of_one_payment_each_side_of_midnight_match_their_own_days(
    pay: Callable[..., Any], at_hour: Callable[[float], datetime], settings: Any
) -> None:
    from leb.common import clock
    from leb.payments.actions import do_request_refund, do_retry_refund

    # given a partial refund booked in leb at 23:30 on DAY that the gateway
    # only made at 00:12 the next day, and a second partial refund of the
    # same payment at 00:30 that both sides booked at once
    attempt = pay(at_hour(1))
    settings.PAYMENTS_SANDBOX_REFUNDS = "unavailable"
    with clock.frozen(at_hour(23.5)):
        late = do_request_refund(attempt, amount=1500, reason="disputed", actor="staff:fin")
    settings.PAYMENTS_SANDBOX_REFUNDS = "instant"
    with clock.frozen(at_hour(24.2)):
        do_retry_refund(late, actor="staff:fin")
    with clock.frozen(at_hour(24.5)):
        do_request_refund(attempt, amount=1000, reason="disputed", actor="staff:fin")

    # when both days are reconciled
    later = at_hour(24 * 2 + 1)
    (first,) = do_reconcile_day(DAY, "sandbox", actor="staff:fin", now=later)
    (second,) = do_reconcile_day(DAY + timedelta(days=1), "sandbox", actor="staff:fin", now=later)

    # then each day's refund is matched by the gateway's record of it, not
    # by the sum of every record within two hours of the day
    assert (first.leb_refunded, first.provider_refunded) == (1500, 0)
    assert (second.leb_refunded, second.provider_refunded) == (1000, 2500)
    assert not Mismatch.objects.exists()
