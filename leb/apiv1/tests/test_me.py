from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client

from leb.common import clock
from leb.testing import assert_problem, bearer, topup

URL = "/api/v1/me/lines"


def test_owner_sees_their_lines_with_balance(
    owner_client: Client,
    owner: Any,
    outsider: Any,
    make_line: Any,
    hkd_plan: Any,
    now: Any,
    ledger_ok: Any,
) -> None:
    # given
    mine = make_line(owner=owner)
    topup(mine, hkd_plan, now=now)
    empty = make_line(owner=owner)
    make_line(owner=outsider)
    make_line()

    # when
    response = owner_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")

    # then
    assert response.status_code == 200
    body = response.json()
    assert [row["msisdn"] for row in body] == [mine.msisdn, empty.msisdn]
    assert body[0]["balance"] == {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"}
    assert body[0]["status"] == "active"
    assert body[0]["days_left"] == 210
    assert body[0]["msisdn_display"].startswith("+852 ")
    assert body[1]["balance"]["amount"] == 0
    ledger_ok()


def test_outsider_never_sees_other_lines(
    outsider_client: Client, owner: Any, make_line: Any
) -> None:
    # given
    make_line(owner=owner)

    # when
    response = outsider_client.get(URL)

    # then
    assert response.status_code == 200
    assert response.json() == []


def test_status_is_effective_now(owner_client: Client, owner: Any, make_line: Any) -> None:
    # given: the validity ran out and the sweep has not run
    make_line(owner=owner)
    clock.advance(timedelta(days=31))

    # when
    response = owner_client.get(URL, HTTP_ACCEPT_LANGUAGE="en")

    # then
    row = response.json()[0]
    assert (row["status"], row["status_label"]) == ("grace", "Grace (receive-only)")
    assert row["days_left"] == 0


def test_guest_is_401(anonymous: Client, db: Any) -> None:
    # when
    response = anonymous.get(URL)

    # then
    assert_problem(response, 401, "not_authenticated")


def test_token_works_and_records_its_use(
    anonymous: Client, owner: Any, owner_token: str, make_line: Any, now: Any
) -> None:
    from leb.api.models import PersonalToken

    # given
    make_line(owner=owner)

    # when
    response = anonymous.get(URL, **bearer(owner_token))

    # then
    assert len(response.json()) == 1
    assert PersonalToken.objects.get(user=owner).last_used_at == now


def test_revoked_wrong_or_malformed_token_is_401(
    anonymous: Client, owner: Any, owner_token: str
) -> None:
    from leb.api.actions import do_revoke_personal_token
    from leb.api.models import PersonalToken

    # given
    other_secret = owner_token[:-1] + ("0" if owner_token[-1] != "0" else "1")

    # when
    wrong = anonymous.get(URL, **bearer(other_secret))
    malformed = anonymous.get(URL, **bearer("leb_nothing"))
    basic = anonymous.get(URL, HTTP_AUTHORIZATION="Basic b3duZXI6cHc=")
    do_revoke_personal_token(PersonalToken.objects.get(user=owner))
    revoked = anonymous.get(URL, **bearer(owner_token))

    # then
    for response in (wrong, malformed, basic, revoked):
        assert_problem(response, 401, "not_authenticated")


def test_token_of_a_deactivated_user_is_401(
    anonymous: Client, owner: Any, owner_token: str
) -> None:
    # given
    owner.is_active = False
    owner.save()

    # when
    response = anonymous.get(URL, **bearer(owner_token))

    # then
    assert_problem(response, 401, "not_authenticated")


def test_query_budget(
    owner_client: Client,
    anonymous: Client,
    owner: Any,
    owner_token: str,
    make_line: Any,
    hkd_plan: Any,
    now: Any,
    django_assert_max_num_queries: Any,
) -> None:
    # given
    for _ in range(5):
        topup(make_line(owner=owner), hkd_plan, now=now)

    # when / then: the count does not grow with the lines (a session costs
    # its row, the user and the profile the session middleware reads)
    with django_assert_max_num_queries(4):
        by_session = owner_client.get(URL)
    with django_assert_max_num_queries(3):
        by_token = anonymous.get(URL, **bearer(owner_token))
    assert len(by_session.json()) == len(by_token.json()) == 5
