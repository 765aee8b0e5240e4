from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leb.autokeep.actions import AutoKeepError, do_charge_saved_method, do_remove_method
from leb.ledger.queries import balance_by_code
from leb.payments.models import AttemptStatus, PaymentAttempt
from leb.topups.models import OrderStatus, TopUpOrder

from .helpers import DECLINED_CARD, NO_FUNDS_CARD, SECURE_CARD

pytestmark = pytest.mark.django_db


def test_off_session_charge_tops_up_through_the_payment_path(
    line: Any, card: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    # given a line whose owner saved the 4242 test card
    before = line.valid_until
    # when the hotline buys a plan with it
    order = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="ivr", idempotency_key="ivr:call-1", now=now
    )
    # then the order is paid through an attempt, settled and fulfilled
    assert order.status == OrderStatus.FULFILLED
    assert order.channel == "ivr"
    assert order.receipt_number
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.provider, attempt.status) == ("sandbox", AttemptStatus.SUCCEEDED)
    assert attempt.provider_data["off_session"] is True
    line.refresh_from_db()
    assert line.valid_until > before
    assert balance_by_code(f"wallet:line:{line.pk}") == hkd_plan.credit
    ledger_ok()


def test_same_key_returns_the_same_order_without_a_second_charge(
    line: Any, card: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    first = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="ivr", idempotency_key="k1", now=now
    )
    again = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="ivr", idempotency_key="k1", now=now
    )
    assert again.pk == first.pk
    assert PaymentAttempt.objects.count() == 1
    assert balance_by_code(f"wallet:line:{line.pk}") == hkd_plan.credit
    ledger_ok()


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (DECLINED_CARD, "card_declined"),
        (NO_FUNDS_CARD, "insufficient_funds"),
        (SECURE_CARD, "authentication_required"),
    ],
)
def test_refused_cards_fail_the_order_with_the_reason(
    line: Any, save_card: Any, hkd_plan: Any, now: datetime, number: str, code: str, ledger_ok: Any
) -> None:
    # given a saved card the sandbox refuses off-session
    save_card(number)
    before = line.valid_until
    # when
    order = do_charge_saved_method(
        line=line, plan=hkd_plan, channel="auto", idempotency_key=f"x:{code}", now=now
    )
    # then nothing was topped up and the reason is kept
    assert order.status == OrderStatus.FAILED
    attempt = PaymentAttempt.objects.get(order=order)
    assert (attempt.status, attempt.failure_code) == (AttemptStatus.FAILED, code)
    line.refresh_from_db()
    assert line.valid_until == before
    if code == "authentication_required":
        assert "3-D Secure" in order.failure_reason
    ledger_ok()


def test_no_usable_card_is_refused(
    owner: Any, line: Any, card: Any, hkd_plan: Any, now: datetime
) -> None:
    do_remove_method(user=owner, method=card, now=now)
    with pytest.raises(AutoKeepError) as info:
        do_charge_saved_method(
            line=line, plan=hkd_plan, channel="ivr", idempotency_key="k", now=now
        )
    assert info.value.code == "no_method"
    assert not TopUpOrder.objects.exists()


def test_a_line_without_owner_cannot_be_charged(
    make_line: Any, card: Any, hkd_plan: Any, now: datetime
) -> None:
    with pytest.raises(AutoKeepError):
        do_charge_saved_method(
            line=make_line(), plan=hkd_plan, channel="ivr", idempotency_key="k", now=now
        )


def test_expired_card_is_not_usable(
    line: Any, save_card: Any, hkd_plan: Any, now: datetime
) -> None:
    from datetime import timedelta

    save_card(exp=(6, 2026))
    later = now + timedelta(days=40)
    with pytest.raises(AutoKeepError) as info:
        do_charge_saved_method(
            line=line, plan=hkd_plan, channel="ivr", idempotency_key="k", now=later
        )
    assert info.value.code == "no_method"
