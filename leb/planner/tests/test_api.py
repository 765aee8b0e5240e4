"""GET /api/v1/me/lines/{line_id}/keep-plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from leb.catalog.models import Plan
from leb.testing import assert_problem, bearer

pytestmark = pytest.mark.django_db


def url(line: Any) -> str:
    return f"/api/v1/me/lines/{line.pk}/keep-plan"


def test_owner_gets_the_plan(owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan) -> None:
    # given an owned HK line valid until 1 July 2026
    line = make_line(owner=owner)
    # when
    response = owner_client.get(url(line), {"until": "2027-06-01", "allow_grace": "false"})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["line_id"] == line.pk
    assert (body["until"], body["allow_grace"], body["feasible"], body["reason"]) == (
        "2027-06-01",
        False,
        True,
        "",
    )
    assert body["total"] == {"amount": 10000, "currency": "HKD", "formatted": "HK$100.00"}
    assert body["steps"][0] == {
        "on": "2026-06-30",
        "plan_code": "hk-50",
        "plan_name": "HK$50 / 180 days",
        "channel": "auto",
        "price": {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"},
        "promotion_code": "",
        "valid_until_after": "2026-12-28",
        "receive_only_days": 0,
        "days": 180,
        "days_added": 180,
    }
    assert len(body["steps"]) == 2
    assert body["receive_only_days"] == 0


def test_with_grace_and_a_token(
    owner: Any, owner_token: str, client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    line = make_line(owner=owner)
    response = client.get(
        url(line), {"until": "2028-09-01", "allow_grace": "true"}, **bearer(owner_token)
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["allow_grace"] is True
    assert len(body["steps"]) == 4
    assert body["receive_only_days"] == 76


def test_default_target_is_three_years(
    owner: Any, owner_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    line = make_line(owner=owner)
    body = owner_client.get(url(line)).json()
    assert body["until"] == "2029-06-01"
    assert body["feasible"] is True


def test_infeasible_is_not_an_error(owner: Any, owner_client: Any, make_line: Any) -> None:
    # given no plan on sale
    line = make_line(owner=owner)
    body = owner_client.get(url(line), {"until": "2027-06-01"}).json()
    assert body["feasible"] is False
    assert body["reason"] == "No plan for this line is on sale for automatic or online top-ups."
    assert body["steps"] == []
    assert body["total"]["amount"] == 0


def test_someone_elses_line_is_not_found(
    owner: Any, outsider_client: Any, make_line: Any, hkd_plan: Plan
) -> None:
    line = make_line(owner=owner)
    assert_problem(outsider_client.get(url(line), {"until": "2027-06-01"}), 404, "line_not_found")


def test_unknown_line_is_not_found(owner_client: Any) -> None:
    assert_problem(owner_client.get("/api/v1/me/lines/999999/keep-plan"), 404, "line_not_found")


def test_anonymous_must_sign_in(anonymous: Any, owner: Any, make_line: Any) -> None:
    line = make_line(owner=owner)
    response = anonymous.get(url(line), {"until": "2027-06-01"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ({"until": "31/12/2030"}, "invalid", "until"),
        ({"until": "2030-02-30"}, "invalid", "until"),
        ({"until": "2026-05-31"}, "until_past", "until"),
        ({"until": "2056-06-02"}, "until_too_far", "until"),
        ({"until": "2027-06-01", "allow_grace": "perhaps"}, "validation_error", "allow_grace"),
    ],
)
def test_bad_input_is_a_422_problem(
    owner: Any,
    owner_client: Any,
    make_line: Any,
    hkd_plan: Plan,
    query: dict[str, str],
    code: str,
    field: str,
) -> None:
    line = make_line(owner=owner)
    body = assert_problem(owner_client.get(url(line), query), 422, code)
    assert body["errors"][0]["field"] == field
    assert body["errors"][0]["message"]


def test_problem_in_chinese(owner: Any, owner_client: Any, make_line: Any) -> None:
    line = make_line(owner=owner)
    response = owner_client.get(url(line), {"until": "x"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 422


def test_queries_do_not_grow_with_the_catalog(
    owner: Any,
    owner_client: Any,
    make_line: Any,
    hkd_plan: Plan,
    now: datetime,
    django_assert_max_num_queries: Any,
) -> None:
    from datetime import timedelta

    from leb.catalog.models import Promotion

    line = make_line(owner=owner)
    for i in range(10):
        Plan.objects.create(
            code=f"more-{i}",
            name_en=f"m{i}",
            name_zh_hans=f"m{i}",
            name_zh_hant=f"m{i}",
            currency="HKD",
            price=6000 + i,
            credit=1000,
            validity_days=30 + i,
        )
    for i in range(3):
        Promotion.objects.create(
            code=f"auto-{i}",
            name_en="x",
            name_zh_hans="x",
            name_zh_hant="x",
            currency="HKD",
            starts_at=now,
            ends_at=now + timedelta(days=100),
            discount_percent=5 + i,
        )
    # session, user, profile, line, plans, promotions, promotion plans
    with django_assert_max_num_queries(7):
        response = owner_client.get(url(line), {"until": "2031-06-01"})
    assert response.status_code == 200


def test_only_get(owner: Any, owner_client: Any, make_line: Any) -> None:
    line = make_line(owner=owner)
    response = owner_client.post(url(line), {}, content_type="application/json")
    assert response.status_code == 405
