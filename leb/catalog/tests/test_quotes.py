from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.catalog.models import FreeAmountRule, Plan, Promotion
from leb.catalog.quotes import Quote, QuoteError, find_plan, quote
from leb.lines.actions import sweep_lines
from leb.testing import topup

pytestmark = pytest.mark.django_db


def promotion(now: datetime, **kw: Any) -> Promotion:
    fields: dict[str, Any] = dict(
        code=f"promo-{Promotion.objects.count()}",
        name_en="Promo",
        name_zh_hans="优惠",
        name_zh_hant="優惠",
        currency="HKD",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
    )
    fields.update(kw)
    plans = fields.pop("plans", [])
    promo = Promotion.objects.create(**fields)
    promo.plans.set(plans)
    return promo


def test_plan_quote_freezes_price_credit_and_new_validity(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    # given an active line valid for 30 more days (stack rule, 365-day cap)
    line = make_line()
    # when
    q = quote(line, hkd_plan, "web", now=now)
    # then
    assert (q.price, q.credit, q.bonus_credit, q.validity_days) == (5000, 5000, 0, 180)
    assert q.new_valid_until == now + timedelta(days=210)
    assert not q.capped
    assert q.expires_at == now + timedelta(minutes=15)
    assert Quote.from_dict(q.to_dict()) == q


def test_quote_says_when_the_cap_cuts_validity(make_line: Any, now: datetime) -> None:
    line = make_line()
    year = Plan.objects.create(
        code="hk-400",
        name_en="x",
        name_zh_hans="x",
        name_zh_hant="x",
        currency="HKD",
        price=9000,
        credit=9000,
        validity_days=400,
    )
    q = quote(line, year, "web", now=now)
    assert q.capped and q.new_valid_until == now + timedelta(days=365)
    assert q.days_lost_to_cap == 65


def test_automatic_promotion_applies_best_offer(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    line = make_line()
    promotion(now, bonus_credit_percent=10, bonus_days=30)
    promotion(now, bonus_credit_fixed=200)
    q = quote(line, hkd_plan, "web", now=now)
    assert q.bonus_credit == 500 and q.bonus_days == 30 and q.validity_days == 210
    assert ("bonus_credit", 500) in q.breakdown()


def test_promo_code_discount(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    line = make_line()
    promotion(now, promo_code="SAVE10", discount_percent=10)
    q = quote(line, hkd_plan, "web", "save10", now=now)
    assert (q.list_price, q.discount, q.price, q.credit) == (5000, 500, 4500, 5000)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"starts_at_days": 5}, "promo_not_applicable"),
        ({"ends_at_days": -1}, "promo_not_applicable"),
        ({"channels": ["ivr"]}, "promo_not_applicable"),
        ({"budget": 100}, "promo_not_applicable"),
        ({"currency": "GBP"}, "promo_not_applicable"),
        ({"discount_percent": 100}, "promo_not_applicable"),
    ],
)
def test_promo_code_outside_its_terms_is_an_error(
    make_line: Any, hkd_plan: Plan, now: datetime, change: dict[str, Any], code: str
) -> None:
    line = make_line()
    kw: dict[str, Any] = {"promo_code": "BONUS", "bonus_credit_fixed": 300}
    if "starts_at_days" in change:
        kw["starts_at"] = now + timedelta(days=change.pop("starts_at_days"))
        kw["ends_at"] = now + timedelta(days=60)
    if "ends_at_days" in change:
        kw["starts_at"] = now - timedelta(days=10)
        kw["ends_at"] = now + timedelta(days=change.pop("ends_at_days"))
    promotion(now, **{**kw, **change})
    with pytest.raises(QuoteError) as exc:
        quote(line, hkd_plan, "web", "BONUS", now=now)
    assert exc.value.code == code


def test_unknown_promo_code(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    with pytest.raises(QuoteError) as exc:
        quote(make_line(), hkd_plan, "web", "NOPE", now=now)
    assert exc.value.code == "promo_unknown"


def test_per_line_limit(make_line: Any, hkd_plan: Plan, now: datetime, ledger_ok: Any) -> None:
    line = make_line()
    promotion(now, promo_code="ONCE", bonus_days=10, per_line_limit=1)
    topup(line, hkd_plan, now=now, promo_code="ONCE")
    line.refresh_from_db()
    with pytest.raises(QuoteError):
        quote(line, hkd_plan, "web", "ONCE", now=now)
    # another line may still use it
    assert quote(make_line(), hkd_plan, "web", "ONCE", now=now).bonus_days == 10
    ledger_ok()


def test_plan_problems(make_line: Any, hkd_plan: Plan, gbp_plan: Plan, now: datetime) -> None:
    line = make_line()
    with pytest.raises(QuoteError) as exc:
        quote(line, gbp_plan, "web", now=now)
    assert exc.value.code == "plan_currency"
    hkd_plan.is_active = False
    hkd_plan.save()
    with pytest.raises(QuoteError) as exc:
        quote(line, hkd_plan, "web", now=now)
    assert exc.value.code == "plan_inactive"
    hkd_plan.is_active, hkd_plan.active_until = True, now
    hkd_plan.save()
    with pytest.raises(QuoteError):
        quote(line, hkd_plan, "web", now=now)
    hkd_plan.active_until, hkd_plan.channels = None, ["agent"]
    hkd_plan.save()
    with pytest.raises(QuoteError) as exc:
        quote(line, hkd_plan, "web", now=now)
    assert exc.value.code == "plan_channel"
    with pytest.raises(QuoteError) as exc:
        find_plan("nope")
    assert exc.value.code == "plan_unknown"


def test_free_amount_tiers_and_limits(make_line: Any, now: datetime) -> None:
    line = make_line()
    FreeAmountRule.objects.create(
        currency="HKD",
        min_amount=1000,
        max_amount=100000,
        tiers=[[1000, 30], [5000, 180], [10000, 365]],
    )
    assert quote(line, 4999, "web", now=now).validity_days == 30
    assert quote(line, 5000, "web", now=now).validity_days == 180
    for bad, code in [
        (0, "amount_not_positive"),
        (-100, "amount_not_positive"),
        (999, "amount_range"),
        (100001, "amount_range"),
    ]:
        with pytest.raises(QuoteError) as exc:
            quote(line, bad, "web", now=now)
        assert exc.value.code == code


def test_free_amount_without_rule(make_line: Any, now: datetime) -> None:
    with pytest.raises(QuoteError) as exc:
        quote(make_line(), 5000, "web", now=now)
    assert exc.value.code == "amount_unavailable"


def test_terminated_and_inventory_lines_cannot_be_quoted(
    make_line: Any, hkd_plan: Plan, now: datetime
) -> None:
    line = make_line()
    sweep_lines(now + timedelta(days=200))
    line.refresh_from_db()
    with pytest.raises(QuoteError) as exc:
        quote(line, hkd_plan, "web", now=now + timedelta(days=200))
    assert exc.value.code == "line_terminated"
    with pytest.raises(QuoteError) as exc:
        quote(make_line(activate=False), hkd_plan, "web", now=now)
    assert exc.value.code == "line_inventory"


def test_suspended_line_pays_restore_fee(make_line: Any, hkd_plan: Plan, now: datetime) -> None:
    line = make_line()  # valid 30 days, grace 30, suspension 60, restore fee 1000
    q = quote(line, hkd_plan, "web", now=now + timedelta(days=65))
    assert q.status_before == "suspended" and q.restore_fee == 1000
    assert q.credit_to_wallet == 4000
    assert ("restore_fee", -1000) in q.breakdown()
