from __future__ import annotations

import json
from typing import Any

import pytest

from leb.autokeep.models import AutoKeepRule

pytestmark = pytest.mark.django_db


def url(line: Any) -> str:
    return f"/api/v1/me/lines/{line.pk}/autokeep"


def put(client: Any, line: Any, body: dict[str, Any]) -> Any:
    return client.put(url(line), data=json.dumps(body), content_type="application/json")


def test_payment_methods_lists_only_mine(
    owner_client: Any, card: Any, save_card: Any, outsider: Any
) -> None:
    save_card(user=outsider)
    response = owner_client.get("/api/v1/me/payment-methods")
    assert response.status_code == 200
    data = response.json()
    assert [(m["id"], m["last4"], m["usable"]) for m in data] == [(card.pk, "4242", True)]
    assert "method_reference" not in data[0]


def test_payment_methods_need_sign_in(anonymous: Any) -> None:
    response = anonymous.get("/api/v1/me/payment-methods")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")


def test_get_without_rule_says_disabled(owner_client: Any, line: Any) -> None:
    response = owner_client.get(url(line))
    assert response.status_code == 200
    assert response.json()["enabled"] is False


def test_put_sets_and_get_reads_the_rule(
    owner_client: Any, line: Any, card: Any, hkd_plan: Any
) -> None:
    response = put(
        owner_client, line, {"mode": "threshold", "plan_code": "hk-50", "days_before": 5}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["enabled"], body["mode"], body["plan_code"], body["days_before"]) == (
        True,
        "threshold",
        "hk-50",
        5,
    )
    assert body["payment_method_id"] == card.pk
    assert owner_client.get(url(line)).json()["days_before"] == 5
    response = put(owner_client, line, {"mode": "cheapest", "until": "2027-01-31", "paused": True})
    body = response.json()
    assert (body["mode"], body["until"], body["paused"]) == ("cheapest", "2027-01-31", True)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (
            {"mode": "threshold", "plan_code": "hk-50", "days_before": 0},
            422,
            "days_out_of_range",
            "days_before",
        ),
        (
            {"mode": "threshold", "plan_code": "uk-10", "days_before": 7},
            422,
            "plan_currency",
            "plan_code",
        ),
        (
            {"mode": "threshold", "plan_code": "nope", "days_before": 7},
            422,
            "plan_unknown",
            "plan_code",
        ),
        ({"mode": "cheapest", "until": "2020-01-01"}, 422, "until_past", "until"),
        ({"mode": "cheapest", "until": "not-a-date"}, 422, None, "until"),
        ({"mode": "sometimes"}, 422, None, "mode"),
        ({"mode": "cheapest", "payment_method_id": 999999}, 404, "payment_method_not_found", None),
    ],
)
def test_put_refuses_bad_input_as_problem_json(
    owner_client: Any,
    line: Any,
    card: Any,
    hkd_plan: Any,
    gbp_plan: Any,
    body: dict[str, Any],
    status: int,
    code: str | None,
    field: str | None,
) -> None:
    response = put(owner_client, line, body)
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    if code:
        assert problem["code"] == code
    if field:
        assert field in {e["field"] for e in problem.get("errors", [])}
    assert not AutoKeepRule.objects.exists()


def test_put_without_a_card_is_refused(owner_client: Any, line: Any) -> None:
    response = put(owner_client, line, {"mode": "cheapest"})
    assert response.status_code == 422
    assert response.json()["code"] == "no_method"


def test_someone_elses_line_is_not_found(
    outsider_client: Any, line: Any, save_card: Any, outsider: Any
) -> None:
    save_card(user=outsider)
    assert outsider_client.get(url(line)).status_code == 404
    response = put(outsider_client, line, {"mode": "cheapest"})
    assert response.status_code == 404
    assert response.json()["code"] == "line_not_found"
    assert not AutoKeepRule.objects.exists()


def test_someone_elses_card_is_not_found(
    owner_client: Any, line: Any, card: Any, save_card: Any, outsider: Any
) -> None:
    theirs = save_card(user=outsider)
    response = put(owner_client, line, {"mode": "cheapest", "payment_method_id": theirs.pk})
    assert response.status_code == 404
