"""Finance's settlement pages in a browser: the dashboard's "Settlement
mismatches" figure opens the day's mismatches, and a run shows both sides."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from leb.common import clock
from leb.finance.actions import do_reconcile_day, yesterday
from leb.finance.reconcile import operator_zone
from leb.payments.models import PaymentAttempt
from leb.payments.providers import sandbox
from leb.topups.actions import do_create_order

from .helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_the_mismatch_figure_opens_the_days_mismatches(
    page_for: Any, live_server: Any, make_line: Any, hkd_plan: Any
) -> None:
    # given yesterday reconciled with one capture leb never settled
    day = yesterday()
    noon = datetime.combine(day, time(12), tzinfo=operator_zone())
    order = do_create_order(
        line=make_line(at=noon - timedelta(days=1)),
        channel="web",
        plan=hkd_plan,
        idempotency_key="browser:settlement",
        now=noon,
    )
    attempt = PaymentAttempt.objects.create(
        order=order,
        provider="sandbox",
        amount=order.price,
        currency=order.currency,
        status="pending",
        created_at=noon,
        updated_at=noon,
    )
    sandbox.capture_at_gateway(attempt, noon)
    do_reconcile_day(day, "sandbox", actor="staff:fin", now=clock.now())
    user = get_user_model().objects.create_user("fin", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    page = page_for("en", width=1280)
    _sign_in(page, live_server, user)

    # when finance opens the back office
    page.goto(f"{live_server.url}/ops/")

    # then the figure shows the mismatch, and its bar opens exactly that list
    figure = page.locator("#figure-settlement-mismatches")
    assert figure.is_visible()
    shot(page, "settlement-dashboard-en")
    figure.locator("svg a").first.click()
    page.wait_for_load_state()
    assert "/ops/finance/mismatch/" in page.url
    assert page.locator("#result_list tbody tr").count() == 1
    shot(page, "settlement-mismatches-en")

    # and the run's page shows both sides and the mismatch
    page.goto(f"{live_server.url}/ops/finance/settlementrun/")
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_load_state()
    assert "Paid, not fulfilled" in page.content()
    shot(page, "settlement-run-en")
