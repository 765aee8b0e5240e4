from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.test import Client

from leb.testing import assert_problem, bearer

URL = "/api/v1/quotes"


def _post(client: Client, data: Any, **extra: Any) -> Any:
    return client.post(URL, json.dumps(data), content_type="application/json", **extra)


def test_quote_for_a_plan(anonymous: Client, make_line: Any, hkd_plan: Any, now: datetime) -> None:
    # given
    line = make_line()

    # when
    response = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["line_id"] == line.pk
    assert body["channel"] == "web"
    assert (body["price"], body["credit"], body["currency"]) == (5000, 5000, "HKD")
    assert body["validity_days"] == 180
    assert body["credit_to_wallet"] == 5000
    assert body["capped"] is False and body["days_lost_to_cap"] == 0
    assert body["price_formatted"] == "HK$50.00"
    assert datetime.fromisoformat(body["expires_at"]) == now + timedelta(minutes=15)
    assert datetime.fromisoformat(body["new_valid_until"]) == now + timedelta(days=30 + 180)
    assert [row["key"] for row in body["breakdown"]] == ["list_price", "price", "credit"]
    assert body["breakdown"][0]["label"] == "List price"
    assert body["breakdown"][0]["amount"]["amount"] == 5000


def test_quote_capped_by_policy(anonymous: Client, make_line: Any, now: datetime) -> None:
    from leb.catalog.models import Plan

    # given: 30 days left + 365 days is over the policy's 365-day cap
    Plan.objects.create(
        code="hk-year",
        name_en="Year",
        name_zh_hans="年",
        name_zh_hant="年",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=365,
    )
    line = make_line()

    # when
    response = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-year"})

    # then
    body = response.json()
    assert body["capped"] is True
    assert body["days_lost_to_cap"] == 30
    assert datetime.fromisoformat(body["new_valid_until"]) == now + timedelta(days=365)


def test_quote_labels_follow_the_request_language(
    anonymous: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given
    line = make_line()

    # when
    response = _post(
        anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    # then
    assert response.json()["breakdown"][0]["label"] == "原价"


def test_quote_writes_nothing(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    from leb.topups.models import TopUpOrder

    # given
    line = make_line()

    # when
    _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert not TopUpOrder.objects.exists()


def test_quote_for_a_free_amount(anonymous: Client, make_line: Any) -> None:
    from leb.catalog.models import FreeAmountRule

    # given
    FreeAmountRule.objects.create(
        currency="HKD", min_amount=1000, max_amount=100000, tiers=[[1000, 30], [10000, 365]]
    )
    line = make_line()

    # when
    response = _post(anonymous, {"number": line.msisdn, "amount": 2000})

    # then
    assert response.status_code == 200
    body = response.json()
    assert (body["price"], body["plan_code"], body["validity_days"]) == (2000, "", 30)
    assert body["is_free_amount"] is True


def test_quote_refusals_name_their_field(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    # given
    line = make_line()
    number = line.msisdn

    # when
    cases = [
        ("plan_or_amount", "plan_code", {"number": number}),
        ("plan_or_amount", "plan_code", {"number": number, "plan_code": "hk-50", "amount": 1}),
        ("plan_unknown", "plan_code", {"number": number, "plan_code": "nope"}),
        ("amount_unavailable", "amount", {"number": number, "amount": 5000}),
        (
            "promo_unknown",
            "promo_code",
            {"number": number, "plan_code": "hk-50", "promo_code": "X"},
        ),
        ("msisdn_invalid", "number", {"number": "12345", "plan_code": "hk-50"}),
    ]

    # then
    for code, field, data in cases:
        body = assert_problem(_post(anonymous, data), 422, code)
        assert body["errors"][0]["field"] == field, code


def test_quote_neither_plan_nor_amount(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()

    # when
    response = _post(anonymous, {"number": line.msisdn}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    # then
    body = assert_problem(response, 422, "plan_or_amount")
    assert body["detail"] == "请选择套餐或金额。"


def test_quote_for_a_line_not_activated(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    # given
    line = make_line(activate=False)

    # when
    response = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    body = assert_problem(response, 422, "line_inventory")
    assert body["errors"][0]["field"] == "number"


def test_quote_unknown_number(anonymous: Client, hkd_plan: Any) -> None:
    # when
    response = _post(anonymous, {"number": "+85294999999", "plan_code": "hk-50"})

    # then
    assert_problem(response, 404, "line_not_found")


def test_quote_channel_must_be_public(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    # given
    line = make_line()

    # when
    staff = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50", "channel": "admin"})
    phone = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50", "channel": "ivr"})

    # then
    assert_problem(staff, 422, "channel_invalid")
    assert phone.json()["channel"] == "ivr"


def test_quote_schema_errors(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()

    # when
    not_json = anonymous.post(URL, "{nope", content_type="application/json")
    wrong_type = _post(anonymous, {"number": line.msisdn, "amount": "lots"})
    missing = _post(anonymous, {"plan_code": "hk-50"})

    # then
    assert_problem(not_json, 400, "bad_request")
    body = assert_problem(wrong_type, 422, "validation_error")
    assert body["errors"] == [
        {"field": "amount", "message": "Enter a whole number.", "code": "int_parsing"}
    ]
    body = assert_problem(missing, 422, "validation_error")
    assert body["errors"][0]["field"] == "number"


def test_quote_with_a_wrong_token_is_401_even_for_guests(
    anonymous: Client, make_line: Any, hkd_plan: Any, owner_token: str
) -> None:
    # given
    line = make_line()

    # when
    wrong = _post(
        anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, **bearer(owner_token + "0")
    )
    right = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, **bearer(owner_token))

    # then
    assert_problem(wrong, 401, "not_authenticated")
    assert right.status_code == 200


def test_quote_says_the_days_really_added(
    anonymous: Client, make_line: Any, hkd_plan: Any, now: datetime
) -> None:
    from leb.catalog.models import Plan

    # given a 365-day plan on a line valid 30 more days (365-day cap), and a 180-day plan
    Plan.objects.create(
        code="hk-year",
        name_en="Year",
        name_zh_hans="年",
        name_zh_hant="年",
        currency="HKD",
        price=10000,
        credit=10000,
        validity_days=365,
    )
    line = make_line()

    # when both are quoted
    capped = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-year"}).json()
    full = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-50"}).json()

    # then the capped one adds 335 days, not 365, and says so
    assert (capped["days_added"], capped["adds_fewer_days"], capped["validity_days"]) == (
        335,
        True,
        365,
    )
    assert capped["days_added_text"] == (
        "This top-up adds 335 days, not 365: your number will be valid until June 1, 2027 "
        "(the most this line allows is 365 days from today)."
    )
    assert (full["days_added"], full["adds_fewer_days"]) == (180, False)
    assert full["days_added_text"] == (
        "This top-up adds 180 days: your number will be valid until December 28, 2026."
    )


def test_quote_that_would_add_nothing_is_a_422_problem(
    anonymous: Client, make_line: Any, now: datetime
) -> None:
    from leb.catalog.models import Plan
    from leb.topups.models import TopUpOrder

    # given a days-only plan on a line already valid until its cap
    Plan.objects.create(
        code="hk-keep",
        name_en="Keep",
        name_zh_hans="保号",
        name_zh_hant="保號",
        currency="HKD",
        price=5000,
        credit=0,
        validity_days=180,
    )
    line = make_line()
    line.valid_until = now + timedelta(days=365)
    line.save(update_fields=["valid_until"])

    # when it is quoted, and ordered
    response = _post(anonymous, {"number": line.msisdn, "plan_code": "hk-keep"})
    order = anonymous.post(
        "/api/v1/orders",
        json.dumps({"number": line.msisdn, "plan_code": "hk-keep"}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-adds-nothing",
    )

    # then both are refused with the code, as problem documents, and nothing is written
    for refused in (response, order):
        body = assert_problem(refused, 422, "adds_nothing")
        assert "would add no days" in body["detail"]
    assert not TopUpOrder.objects.exists()


def test_quote_schema_documents_the_days_added(anonymous: Client) -> None:
    schema = anonymous.get("/api/v1/openapi.json").json()
    fields = schema["components"]["schemas"]["QuoteOut"]["properties"]
    assert "really adds" in fields["days_added"]["description"]
    assert fields["adds_fewer_days"]["type"] == "boolean"
    assert fields["days_added"]["type"] == "integer"
