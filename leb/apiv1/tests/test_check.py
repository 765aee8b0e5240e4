from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client, override_settings

from leb.apiv1.schemas import LineCheckOut
from leb.common import clock
from leb.lines.actions import sweep_lines
from leb.lines.models import NumberStatus
from leb.testing import assert_problem

URL = "/api/v1/lines/check"
PUBLIC_KEYS = {
    "msisdn",
    "status",
    "status_label",
    "valid_until",
    "days_left",
    "grace_from",
    "suspended_from",
    "number_lost_on",
    "can_top_up",
}


def test_check_shows_status_without_balance_or_owner(
    anonymous: Client, make_line: Any, owner: Any, ledger_ok: Any
) -> None:
    # given
    line = make_line(owner=owner)

    # when
    response = anonymous.get(URL, {"number": line.msisdn})

    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert body["msisdn"] == line.msisdn
    assert body["status"] == "active"
    assert body["days_left"] == 30
    assert body["can_top_up"] is True
    assert body["grace_from"] and body["suspended_from"] and body["number_lost_on"]
    text = response.content.decode()
    assert "balance" not in text and "owner" not in text
    ledger_ok()


def test_check_accepts_national_format(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()
    national = line.msisdn.removeprefix("+852")

    # when
    response = anonymous.get(URL, {"number": f"{national[:4]} {national[4:]}"})

    # then
    assert response.status_code == 200
    assert response.json()["msisdn"] == line.msisdn


def test_check_shows_effective_status_before_the_sweep(anonymous: Client, make_line: Any) -> None:
    # given: validity ran out yesterday and nothing has swept the line
    line = make_line()
    clock.advance(timedelta(days=31))

    # when
    response = anonymous.get(URL, {"number": line.msisdn})

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "grace"
    assert response.json()["days_left"] == 0


def test_check_unknown_number_is_404(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get(URL, {"number": "+85294999999"})

    # then
    assert_problem(response, 404, "line_not_found")


def test_check_inventory_line_is_404(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line(activate=False)

    # when
    response = anonymous.get(URL, {"number": line.msisdn})

    # then
    assert_problem(response, 404, "line_not_found")


def test_check_bad_number_is_a_field_problem(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get(URL, {"number": "12345"})

    # then
    body = assert_problem(response, 422, "msisdn_invalid")
    assert body["errors"] == [
        {
            "field": "number",
            "message": "12345 is not a valid phone number.",
            "code": "msisdn_invalid",
        }
    ]


def test_check_bad_number_detail_is_translated(anonymous: Client, db: Any) -> None:
    # when
    english = anonymous.get(URL, {"number": "12345"}, HTTP_ACCEPT_LANGUAGE="en")
    chinese = anonymous.get(URL, {"number": "12345"}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    # then
    assert english.json()["detail"] == "12345 is not a valid phone number."
    assert chinese.json()["detail"] == "12345 不是有效的电话号码。"
    assert chinese["Content-Language"] == "zh-hans"
    assert assert_problem(chinese, 422, "msisdn_invalid")


def test_check_missing_number_is_a_validation_problem(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get(URL)

    # then
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] == [
        {"field": "number", "message": "This field is required.", "code": "missing"}
    ]


@override_settings(API_LINE_CHECK_RATE="3/m")
def test_check_is_rate_limited_per_client_address(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()
    for _ in range(3):
        assert anonymous.get(URL, {"number": line.msisdn}).status_code == 200

    # when
    limited = anonymous.get(URL, {"number": line.msisdn})
    other_address = anonymous.get(URL, {"number": line.msisdn}, REMOTE_ADDR="10.0.0.9")

    # then
    body = assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Try again in" in body["detail"]
    assert other_address.status_code == 200


@override_settings(API_LINE_CHECK_RATE="2/m")
def test_check_rate_limit_counts_bad_numbers_too(anonymous: Client, db: Any) -> None:
    # given: guessing numbers is what the limit is for
    anonymous.get(URL, {"number": "+85294000001"})
    anonymous.get(URL, {"number": "12345"})

    # when
    response = anonymous.get(URL, {"number": "+85294000002"})

    # then
    assert_problem(response, 429, "rate_limited")


@override_settings(API_LINE_CHECK_RATE="1/m")
def test_check_rate_limit_ignores_spoofed_forwarded_for(anonymous: Client, db: Any) -> None:
    # given
    anonymous.get(URL, {"number": "+85294000001"}, HTTP_X_FORWARDED_FOR="1.1.1.1")

    # when
    response = anonymous.get(URL, {"number": "+85294000001"}, HTTP_X_FORWARDED_FOR="2.2.2.2")

    # then
    assert_problem(response, 429, "rate_limited")


def test_check_terminated_line_is_404_before_and_after_the_sweep(
    anonymous: Client, make_line: Any
) -> None:
    # given: validity, grace and suspension all ran out
    line = make_line()
    clock.advance(timedelta(days=121))

    # when
    before_sweep = anonymous.get(URL, {"number": line.msisdn})
    sweep_lines(clock.now())
    after_sweep = anonymous.get(URL, {"number": line.msisdn})

    # then
    assert_problem(before_sweep, 404, "line_not_found")
    assert_problem(after_sweep, 404, "line_not_found")


def test_check_quarantined_number_is_404(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()
    clock.advance(timedelta(days=121))
    sweep_lines(clock.now())
    line.phone_number.refresh_from_db()
    assert line.phone_number.status == NumberStatus.QUARANTINED

    # when
    response = anonymous.get(URL, {"number": line.msisdn}, HTTP_ACCEPT_LANGUAGE="zh-hant")

    # then
    body = assert_problem(response, 404, "line_not_found")
    assert body["detail"] != "No line in service has this number."


def test_check_suspended_line_can_still_be_topped_up(anonymous: Client, make_line: Any) -> None:
    # given
    line = make_line()
    clock.advance(timedelta(days=61))

    # when
    response = anonymous.get(URL, {"number": line.msisdn}, HTTP_ACCEPT_LANGUAGE="zh-hant")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "suspended" and body["can_top_up"] is True
    assert body["status_label"] != "Suspended"
    assert body["days_left"] == 0


def test_check_letters_are_a_field_problem(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get(URL, {"number": "9123 abcd"})

    # then
    body = assert_problem(response, 422, "msisdn_chars")
    assert [error["field"] for error in body["errors"]] == ["number"]


def test_check_answers_with_the_same_document_as_its_schema(
    anonymous: Client, make_line: Any
) -> None:
    # given
    line = make_line()
    clock.advance(timedelta(hours=5, microseconds=123456))

    # when
    body = anonymous.get(URL, {"number": line.msisdn}).json()

    # then: the documented schema gives the same document
    assert LineCheckOut.model_validate(body).model_dump(mode="json") == body
    assert body["valid_until"].endswith("Z")
