from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.test import Client

from leb.testing import assert_problem

URL = "/api/v1/plans"


def _plan(code: str, **fields: Any) -> Any:
    from leb.catalog.models import Plan

    values = {
        "name_en": f"Plan {code}",
        "name_zh_hans": f"套餐 {code}",
        "name_zh_hant": f"套餐 {code}",
        "currency": "HKD",
        "price": 10000,
        "credit": 10000,
        "validity_days": 365,
    }
    values.update(fields)
    return Plan.objects.create(code=code, **values)


def test_plans_on_sale_with_money_in_minor_units(anonymous: Client, hkd_plan: Any) -> None:
    # when
    response = anonymous.get(URL, {"currency": "hkd"}, HTTP_ACCEPT_LANGUAGE="en")

    # then
    assert response.status_code == 200
    assert response.json() == [
        {
            "code": "hk-50",
            "name": "HK$50 / 180 days",
            "currency": "HKD",
            "price": {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"},
            "credit": {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"},
            "validity_days": 180,
        }
    ]


def test_plans_names_follow_the_request_language(anonymous: Client, hkd_plan: Any) -> None:
    # when
    hans = anonymous.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    hant = anonymous.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hant").json()

    # then
    assert hans[0]["name"] == "50港元 / 180天"
    assert hant[0]["name"] == "50港元 / 180日"
    assert "50.00" in hans[0]["price"]["formatted"]


def test_plans_hide_what_is_not_on_sale_here_and_now(
    anonymous: Client, hkd_plan: Any, gbp_plan: Any, now: datetime
) -> None:
    # given
    _plan("retired", is_active=False)
    _plan("future", active_from=now + timedelta(days=1))
    _plan("past", active_until=now - timedelta(seconds=1))
    _plan("phone-only", channels=["ivr"])
    _plan("window", active_from=now - timedelta(days=1), active_until=now + timedelta(days=1))

    # when
    hkd = anonymous.get(URL, {"currency": "HKD"}).json()
    everything = anonymous.get(URL).json()
    by_phone = anonymous.get(URL, {"currency": "HKD", "channel": "ivr"}).json()

    # then
    assert [p["code"] for p in hkd] == ["hk-50", "window"]
    assert {p["code"] for p in everything} == {"hk-50", "window", "uk-10"}
    assert [p["code"] for p in by_phone] == ["hk-50", "phone-only", "window"]


def test_plans_bad_currency_or_channel(anonymous: Client, db: Any) -> None:
    # when
    bad_currency = anonymous.get(URL, {"currency": "HK$"})
    staff_channel = anonymous.get(URL, {"channel": "admin"})

    # then
    body = assert_problem(bad_currency, 422, "currency_invalid")
    assert body["errors"][0]["field"] == "currency"
    body = assert_problem(staff_channel, 422, "channel_invalid")
    assert body["errors"][0]["field"] == "channel"


def test_plans_query_budget(
    anonymous: Client, hkd_plan: Any, django_assert_max_num_queries: Any
) -> None:
    # given
    for n in range(10):
        _plan(f"extra-{n}")

    # when
    with django_assert_max_num_queries(1):
        response = anonymous.get(URL, {"currency": "HKD"})

    # then
    assert len(response.json()) == 11
