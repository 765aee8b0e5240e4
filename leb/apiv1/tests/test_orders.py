from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from leb.testing import assert_problem, bearer

URL = "/api/v1/orders"


def _order(client: Client, data: Any, key: str | None = "key-1", **extra: Any) -> Any:
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(URL, json.dumps(data), content_type="application/json", **extra)


def test_guest_creates_a_web_order(
    anonymous: Client, make_line: Any, hkd_plan: Any, ledger_ok: Any
) -> None:
    from leb.topups.models import TopUpOrder

    # given
    line = make_line()

    # when
    response = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert response.status_code == 201
    body = response.json()
    order = TopUpOrder.objects.get(public_id=body["public_id"])
    assert order.customer is None and order.channel == "web" and order.line == line
    assert order.actor == "api:guest"
    assert body["status"] == "pending_payment"
    assert body["status_label"] == "Awaiting payment"
    assert body["price"] == {"amount": 5000, "currency": "HKD", "formatted": "HK$50.00"}
    assert body["quote"]["validity_days"] == 180
    assert body["msisdn"] == line.msisdn
    assert body["receipt_number"] is None
    ledger_ok()


def test_signed_in_order_belongs_to_the_user(
    owner_client: Client, owner: Any, make_line: Any, hkd_plan: Any
) -> None:
    from leb.topups.models import TopUpOrder

    # given
    line = make_line(owner=owner)

    # when
    response = _order(owner_client, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert response.status_code == 201
    assert TopUpOrder.objects.get(public_id=response.json()["public_id"]).customer == owner


def test_token_order_belongs_to_the_user(
    anonymous: Client, owner: Any, owner_token: str, make_line: Any, hkd_plan: Any
) -> None:
    from leb.topups.models import TopUpOrder

    # given
    line = make_line()

    # when
    response = _order(
        anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, **bearer(owner_token)
    )

    # then
    assert response.status_code == 201
    assert TopUpOrder.objects.get(public_id=response.json()["public_id"]).customer == owner


def test_replay_returns_the_same_order(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    from leb.topups.models import TopUpOrder

    # given
    line = make_line()
    first = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # when
    again = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["public_id"] == first.json()["public_id"]
    assert TopUpOrder.objects.count() == 1


def test_same_key_for_another_top_up_is_a_conflict(
    anonymous: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given
    line = make_line()
    _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # when
    response = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50", "promo_code": ""})
    other = _order(anonymous, {"number": make_line().msisdn, "plan_code": "hk-50"})

    # then
    assert response.status_code == 200
    assert_problem(other, 409, "key_conflict")


def test_keys_of_different_callers_do_not_collide(
    anonymous: Client, owner_client: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given
    line = make_line()
    guest = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"})

    # when
    user = _order(owner_client, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert user.status_code == 201
    assert user.json()["public_id"] != guest.json()["public_id"]


def test_order_needs_an_idempotency_key(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    # given
    line = make_line()
    data = {"number": line.msisdn, "plan_code": "hk-50"}

    # when
    missing = _order(anonymous, data, key=None)
    blank = _order(anonymous, data, key="  ")
    too_long = _order(anonymous, data, key="k" * 151)

    # then
    assert_problem(missing, 400, "idempotency_key_missing")
    assert_problem(blank, 400, "idempotency_key_missing")
    assert_problem(too_long, 400, "idempotency_key_invalid")


@pytest.mark.parametrize("key", ["cl\u00e9-1", "key\tone", " key", "key ", "k" * 151, "x\u00a0y"])
def test_an_idempotency_key_is_visible_ascii_as_the_openapi_document_says(
    anonymous: Client, make_line: Any, hkd_plan: Any, key: str
) -> None:
    # given
    line = make_line()

    # when
    response = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, key=key)

    # then
    assert_problem(response, 400, "idempotency_key_invalid")


def test_an_idempotency_key_may_have_inner_spaces_and_punctuation(
    anonymous: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given
    line = make_line()

    # when
    response = _order(
        anonymous, {"number": line.msisdn, "plan_code": "hk-50"}, key="a b:~!" + "k" * 144
    )

    # then
    assert response.status_code == 201, response.content


def test_order_refusals(anonymous: Client, make_line: Any, hkd_plan: Any) -> None:
    # given
    line = make_line()

    # when
    unknown = _order(anonymous, {"number": "+85294999999", "plan_code": "hk-50"}, key="a")
    bad_plan = _order(anonymous, {"number": line.msisdn, "plan_code": "nope"}, key="b")
    both = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50", "amount": 1}, key="c")
    promo = _order(
        anonymous, {"number": line.msisdn, "plan_code": "hk-50", "promo_code": "NOPE"}, key="d"
    )

    # then
    assert_problem(unknown, 404, "line_not_found")
    assert_problem(bad_plan, 422, "plan_unknown")
    assert_problem(both, 422, "plan_or_amount")
    body = assert_problem(promo, 422, "promo_unknown")
    assert body["errors"][0]["field"] == "promo_code"


def test_session_order_needs_csrf(owner: Any, make_line: Any, hkd_plan: Any) -> None:
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    line = make_line()
    data = {"number": line.msisdn, "plan_code": "hk-50"}

    # when
    forged = _order(client, data)
    request = RequestFactory().get("/")
    token = get_token(request)  # what a page of the site would have handed out
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    genuine = _order(client, data, HTTP_X_CSRFTOKEN=token)

    # then
    assert_problem(forged, 403, "csrf_failed")
    assert genuine.status_code == 201


def test_guest_order_needs_no_csrf(make_line: Any, hkd_plan: Any) -> None:
    # given
    client = Client(enforce_csrf_checks=True)
    line = make_line()

    # when
    response = _order(client, {"number": line.msisdn, "plan_code": "hk-50"})

    # then
    assert response.status_code == 201


# --- GET /orders/{public_id} ------------------------------------------------------


def _owned_order(owner: Any, line: Any, plan: Any) -> Any:
    from leb.topups.actions import do_create_order

    return do_create_order(
        line=line, channel="web", idempotency_key=f"t:{line.pk}", plan=plan, customer=owner
    )


def test_owner_reads_their_order(
    owner_client: Client, owner: Any, make_line: Any, hkd_plan: Any
) -> None:
    # given
    order = _owned_order(owner, make_line(owner=owner), hkd_plan)

    # when
    response = owner_client.get(f"{URL}/{order.public_id}")

    # then
    assert response.status_code == 200
    assert response.json()["public_id"] == str(order.public_id)
    assert response.json()["quote"]["price"] == 5000


def test_owner_reads_a_fulfilled_order_with_its_receipt(
    anonymous: Client, owner: Any, owner_token: str, make_line: Any, hkd_plan: Any, ledger_ok: Any
) -> None:
    from leb.topups.actions import do_fulfil_order, do_mark_paid

    # given
    order = _owned_order(owner, make_line(owner=owner), hkd_plan)
    order = do_mark_paid(order, amount=5000, currency="HKD", provider="sandbox", reference="r1")
    order = do_fulfil_order(order)

    # when
    response = anonymous.get(f"{URL}/{order.public_id}", **bearer(owner_token))

    # then
    body = response.json()
    assert body["status"] == "fulfilled"
    assert body["receipt_number"] == order.receipt_number
    assert body["valid_until_after"] is not None
    ledger_ok()


def test_outsider_and_guest_cannot_read_an_order(
    outsider_client: Client, anonymous: Client, owner: Any, make_line: Any, hkd_plan: Any
) -> None:
    # given
    order = _owned_order(owner, make_line(owner=owner), hkd_plan)
    url = f"{URL}/{order.public_id}"

    # when
    outsider = outsider_client.get(url)
    guest = anonymous.get(url)

    # then
    assert_problem(outsider, 404, "order_not_found")
    body = assert_problem(guest, 401, "not_authenticated")
    assert "leb_" in body["detail"]
    assert guest["WWW-Authenticate"].startswith("Bearer")


def test_guest_orders_are_nobodys(
    owner_client: Client, anonymous: Client, make_line: Any, hkd_plan: Any
) -> None:
    # given
    line = make_line()
    public_id = _order(anonymous, {"number": line.msisdn, "plan_code": "hk-50"}).json()["public_id"]

    # when
    response = owner_client.get(f"{URL}/{public_id}")

    # then
    assert_problem(response, 404, "order_not_found")


def test_unknown_or_malformed_order_id(owner_client: Client) -> None:
    # when
    unknown = owner_client.get(f"{URL}/{uuid.uuid4()}")
    malformed = owner_client.get(f"{URL}/not-a-uuid")

    # then
    assert_problem(unknown, 404, "order_not_found")
    assert_problem(malformed, 404, "order_not_found")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_requests_racing_with_one_key_get_one_order_and_one_201(
    make_line: Any, hkd_plan: Any
) -> None:
    from django.db import connection

    from leb.testing import race
    from leb.topups.models import TopUpOrder

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: concurrent connections with row locks")
    # given
    line = make_line()

    # when four copies of one request arrive at once (leb torture race found
    # every copy answered 201 Created)
    responses = race(
        4, lambda _i: _order(Client(), {"number": line.msisdn, "plan_code": "hk-50"}, "same")
    )

    # then one order, created once, the others told it is a replay
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["public_id"] for r in responses}) == 1
    assert TopUpOrder.objects.count() == 1
