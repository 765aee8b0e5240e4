"""Support refunds top-ups up to its limit; above it, or in a currency
without a limit, it takes the finance role."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from leb.backoffice.roles import FINANCE, SUPPORT
from leb.testing import topup
from leb.topups.models import OrderStatus

pytestmark = pytest.mark.django_db

URL = "/ops/topups/topuporder/"


def member(django_user_model: Any, role: str) -> Client:
    user = django_user_model.objects.create_user(f"{role}-1", password="x-unused-9", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def refund(client: Client, order: Any) -> str:
    response = client.post(
        URL,
        {"action": "refund_orders", "_selected_action": [order.pk], "apply": "yes", "reason": "x"},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def test_support_refunds_a_top_up_within_its_limit(
    settings: Any,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a HKD top-up at or under the limit
    settings.SUPPORT_REFUND_LIMITS = {"HKD": hkd_plan.price}
    order = topup(make_line(), hkd_plan, now=now)
    # when support refunds it
    refund(member(django_user_model, SUPPORT), order)
    # then it is refunded
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


def test_support_cannot_refund_above_its_limit_and_finance_can(
    settings: Any,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    # given a top-up one cent above the support limit
    settings.SUPPORT_REFUND_LIMITS = {"HKD": hkd_plan.price - 1}
    order = topup(make_line(), hkd_plan, now=now)
    # when support tries
    html = refund(member(django_user_model, SUPPORT), order)
    # then it is refused with the reason, and nothing changed
    assert "refunds above" in html and "need the finance role" in html
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    # when finance refunds it, then it is refunded
    refund(member(django_user_model, FINANCE), order)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


def test_support_cannot_refund_in_a_currency_without_a_limit(
    settings: Any,
    django_user_model: Any,
    make_line: Callable[..., Any],
    hkd_plan: Any,
    now: datetime,
) -> None:
    settings.SUPPORT_REFUND_LIMITS = {"GBP": 100_000}
    order = topup(make_line(), hkd_plan, now=now)
    html = refund(member(django_user_model, SUPPORT), order)
    assert "refunds in HKD need the finance role" in html
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED


def test_a_limit_that_is_not_currency_equals_amount_stops_the_settings() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from leb.settings import _refund_limits

    assert _refund_limits("hkd=20000, GBP=2000") == {"HKD": 20000, "GBP": 2000}
    assert _refund_limits("") == {}
    with pytest.raises(ImproperlyConfigured):
        _refund_limits("HKD:200")


def test_the_refund_page_is_closed_to_staff_without_a_refund_permission(
    django_user_model: Any,
) -> None:
    user = django_user_model.objects.create_user("viewer", password="x-unused-9", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(reverse("admin:topups_topuporder_changelist")).status_code == 403
