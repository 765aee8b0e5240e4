"""Finance test helpers: a day of sandbox payments made the way the demo and
a real gateway make them (captured at the gateway, settled in leb)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from leb.common import clock

# 31 May 2026 in Hong Kong (the operator's time zone in the tests) runs from
# 30 May 16:00 UTC to 31 May 16:00 UTC; the clock stands on 1 June.
DAY = date(2026, 5, 31)
DAY_START = datetime(2026, 5, 30, 16, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(now: datetime) -> Iterator[None]:
    with clock.frozen(now):
        yield


@pytest.fixture
def at_hour() -> Callable[[float], datetime]:
    def moment(hours: float) -> datetime:
        return DAY_START + timedelta(hours=hours)

    return moment


@pytest.fixture
def make_order(make_line: Any, hkd_plan: Any) -> Callable[..., Any]:
    from leb.topups.actions import do_create_order

    counter = iter(range(1, 10_000))

    def factory(at: datetime) -> Any:
        line = make_line()
        return do_create_order(
            line=line,
            channel="web",
            plan=hkd_plan,
            idempotency_key=f"finance-test:{next(counter)}",
            now=at,
        )

    return factory


@pytest.fixture
def pay(make_order: Callable[..., Any]) -> Callable[..., Any]:
    """An order paid with the sandbox at `at`: the gateway books the capture,
    leb settles it as the webhook would. Returns the attempt."""
    from leb.payments.actions import settle
    from leb.payments.models import AttemptStatus, PaymentAttempt
    from leb.payments.providers import sandbox
    from leb.payments.providers.base import SUCCEEDED, Outcome

    def paid(at: datetime, *, settled: bool = True, captured_amount: int | None = None) -> Any:
        order = make_order(at - timedelta(minutes=1))
        attempt = PaymentAttempt.objects.create(
            order=order,
            provider="sandbox",
            amount=order.price,
            currency=order.currency,
            status=AttemptStatus.PENDING,
            created_at=at,
            updated_at=at,
        )
        sandbox.capture_at_gateway(attempt, at)
        if captured_amount is not None:
            state = {**attempt.provider_data["gateway"], "amount": captured_amount}
            attempt.provider_data = {**attempt.provider_data, "gateway": state}
            attempt.save(update_fields=["provider_data"])
        if settled:
            outcome = Outcome(
                SUCCEEDED,
                amount=order.price,
                currency=order.currency,
                reference=attempt.provider_reference,
            )
            settle(attempt, outcome, now=at)
        attempt.refresh_from_db()
        return attempt

    return paid


@pytest.fixture
def refund() -> Callable[..., Any]:
    """Refund a sandbox payment at `at` the way finance does: books, then gateway."""
    from leb.payments.actions import do_refund_attempt

    def refunded(attempt: Any, at: datetime) -> Any:
        with clock.frozen(at):
            return do_refund_attempt(
                attempt, reason="asked by the payer", actor="staff:fin", now=at
            )

    return refunded


@pytest.fixture
def clean_day(
    pay: Callable[..., Any], refund: Callable[..., Any], at_hour: Callable[[float], datetime]
) -> list[Any]:
    """Three payments and one refund on DAY, both sides agreeing."""
    attempts = [pay(at_hour(2)), pay(at_hour(9.5)), pay(at_hour(20))]
    refund(attempts[1], at_hour(11))
    return attempts
