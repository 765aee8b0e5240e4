"""Demo data stays usable: promotions running whenever `leb demo` is run, and
a demo line that shows the validity-cap warning on purpose."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from leb.catalog.models import Plan, Promotion, PromotionBudgetSlice
from leb.catalog.quotes import QuoteError, quote
from leb.lines import lifecycle
from leb.lines.models import Line, LineStatus
from leb.ops.demo import capped_demo_line, load_demo
from leb.testing import LoadedDemo

pytestmark = pytest.mark.django_db


def _running(now: datetime) -> set[str]:
    return {
        promo.code
        for promo in Promotion.objects.all()
        if promo.is_active and promo.starts_at <= now < promo.ends_at
    }


class TestOnTheLoadedDemo:
    """Each test on the one load of the class, as `leb demo` leaves it."""

    def test_demo_promotions_run_from_a_little_before_today_to_some_weeks_after(
        self, demo: LoadedDemo
    ) -> None:
        now = demo.now
        # given / when: the demo, loaded
        # then both run now and for weeks to come, and started only a little before
        assert _running(now) == {"hk-bonus-10", "hk-keep30"}
        for promo in Promotion.objects.all():
            assert now - timedelta(days=14) <= promo.starts_at <= now
            assert promo.ends_at >= now + timedelta(days=28)

    def test_a_later_demo_load_renews_expired_promotions(self, demo: LoadedDemo) -> None:
        now = demo.now
        # given a demo loaded long ago, whose promotions have since ended
        later = now + timedelta(days=200)
        assert _running(later) == set()
        lines_before = sorted(Line.objects.values_list("iccid", "valid_until"))
        # when `leb demo` runs again
        load_demo(now=later)
        # then the promotions run again, and the lines are left alone
        assert _running(later) == {"hk-bonus-10", "hk-keep30"}
        assert sorted(Line.objects.values_list("iccid", "valid_until")) == lines_before

    def test_a_demo_promotion_whose_budget_is_spent_gets_more(self, demo: LoadedDemo) -> None:
        now = demo.now
        PromotionBudgetSlice.objects.filter(promotion__code="hk-bonus-10", slot=0).update(
            used=19900
        )
        load_demo(now=now)
        promo = Promotion.objects.get(code="hk-bonus-10")
        assert promo.budget is not None and promo.budget - promo.budget_used >= 20000

    def test_the_demo_subscribers_hkd_line_shows_the_cap_warning(self, demo: LoadedDemo) -> None:
        now = demo.now
        # given / when: the demo, loaded
        # then the demo user's active HKD line gets fewer days from a 365-day plan
        line = capped_demo_line()
        assert line is not None and line.status == LineStatus.ACTIVE
        frozen = quote(line, Plan.objects.get(code="hk-100-365"), "web", now=now)
        assert frozen.adds_fewer_days and frozen.capped
        assert 0 < frozen.days_added < 365

    def test_no_demo_top_up_is_refused_or_silently_short(self, demo: LoadedDemo) -> None:
        now = demo.now
        # given the demo, loaded
        # then every live line can buy every plan of its currency on the web: each
        # adds its days, or is flagged (adds_fewer_days) so every channel warns
        for line in Line.objects.select_related("policy"):
            if lifecycle.effective_status(line, now) in (
                LineStatus.TERMINATED,
                LineStatus.INVENTORY,
            ):
                continue
            for plan in Plan.objects.filter(currency=line.currency):
                try:
                    frozen = quote(line, plan, "web", now=now)
                except QuoteError as exc:  # pragma: no cover - the failure message
                    pytest.fail(f"{line.msisdn} cannot buy {plan.code}: {exc.code}")
                assert frozen.days_added == frozen.validity_days or frozen.adds_fewer_days
