"""The checker can fail: a planted double credit, a lost payment, a voucher
paying twice and an overspent promotion are each found. On both databases:
the checks are plain queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from leb.catalog.models import Plan, PromotionBudgetSlice
from leb.common import clock
from leb.ledger.actions import Leg, post_transfers, system_account
from leb.ledger.models import AccountKind
from leb.lines.actions import wallet_for
from leb.lines.models import Line
from leb.payments.models import PaymentAttempt
from leb.payments.providers import sandbox
from leb.payments.providers.base import SUCCEEDED
from leb.topups.actions import do_create_order, do_fulfil_order, do_mark_paid
from leb.torture import world
from leb.torture.checks import check_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_world() -> list[int]:
    now = clock.now()
    world.ensure_catalog(now, promotion_uses=3)
    line_ids = world.make_lines(4, now)
    world.make_vouchers(2, now)
    world.make_agent(2, now)
    return line_ids


def _topup(line_id: int, key: str) -> Any:
    order = do_create_order(
        line=Line.objects.get(pk=line_id),
        channel="web",
        plan=Plan.objects.get(code=world.PROMO_PLAN),
        idempotency_key=key,
    )
    order = do_mark_paid(
        order, amount=order.price, currency=order.currency, provider="sandbox", reference=key
    )
    return do_fulfil_order(order)


def test_a_clean_world_passes(small_world: list[int]) -> None:
    # given paid and fulfilled top-ups
    _topup(small_world[1], "check:1")
    _topup(small_world[2], "check:2")

    # when
    checked = check_all()

    # then
    assert checked.ok, checked.violations
    assert checked.counts["double credits"] == 0
    assert checked.counts["lost payments"] == 0
    assert checked.counts[f"promotion {world.PROMOTION}: spent"] == 2 * world.PROMOTION_DISCOUNT


def test_a_planted_double_credit_is_found(small_world: list[int]) -> None:
    # given a fulfilled top-up whose credit is posted a second time
    order = _topup(small_world[1], "check:double")
    line = Line.objects.get(pk=order.line_id)
    post_transfers(
        f"order:{order.pk}:fulfil:again",
        [
            Leg(
                system_account(AccountKind.SUSPENSE, "HKD"),
                wallet_for(line),
                order.price,
                "topup.credit",
            )
        ],
    )

    # when
    checked = check_all()

    # then the books still balance, but the checker sees the second credit
    assert checked.counts["ledger verify problems"] == 0
    assert checked.counts["double credits"] == 1
    assert any("wallet credited outside a fulfilment" in v for v in checked.violations)


def test_a_planted_lost_payment_is_found(small_world: list[int]) -> None:
    # given a payment the gateway captured whose webhook was lost, the payer gone
    order = do_create_order(
        line=Line.objects.get(pk=small_world[1]),
        channel="web",
        plan=Plan.objects.get(code=world.SMALL_PLAN),
        idempotency_key="check:lost",
    )
    Client().post(reverse("payments:start", args=[order.public_id]))
    sandbox.complete_at_gateway(PaymentAttempt.objects.get(order=order), SUCCEEDED)
    DBTaskResult.objects.all().delete()

    # when
    checked = check_all()

    # then
    assert checked.counts["lost payments"] == 1
    assert any("captured at the provider but not fulfilled" in v for v in checked.violations)


def test_a_paid_order_left_unfulfilled_is_found(small_world: list[int]) -> None:
    # given an order paid but never fulfilled (a crash in between)
    order = do_create_order(
        line=Line.objects.get(pk=small_world[1]),
        channel="web",
        plan=Plan.objects.get(code=world.SMALL_PLAN),
        idempotency_key="check:paid",
    )
    do_mark_paid(
        order, amount=order.price, currency=order.currency, provider="sandbox", reference="r"
    )

    # when
    checked = check_all()

    # then
    assert checked.counts["paid orders not fulfilled"] == 1
    assert any("paid but never fulfilled" in v for v in checked.violations)


def test_an_overspent_promotion_is_found(small_world: list[int]) -> None:
    # given a fulfilled promoted top-up, and a budget that says more was used
    _topup(small_world[1], "check:promo")
    PromotionBudgetSlice.objects.filter(promotion__code=world.PROMOTION, slot=0).update(used=99_000)

    # when
    checked = check_all()

    # then
    assert any("used of a" in v for v in checked.violations)
    assert any("held by its reserved and used redemptions" in v for v in checked.violations)
