"""The scenarios `leb bench http` runs through `leb.ops.bench.loadgen`.

- `quick_check`: `GET /api/v1/lines/check?number=…`, the public quick check.
- `api_topup`: a whole top-up as an API client and its user's browser make
  it: the order (`POST /api/v1/orders`, bearer token, a unique
  `Idempotency-Key`), the payment (`POST /api/v1/orders/{id}/payments`,
  which returns the sandbox's hosted checkout), the checkout page in a fresh
  browser (its CSRF cookie and form token), the form sent with the
  succeeding test card, then the payment polled (`GET /api/v1/payments/{id}`,
  which settles what the gateway decided) until the order is `fulfilled`.

This module imports no models: the load generator's processes never set
Django up.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .loadgen import Client, OperationFailed, expect

QUICK_CHECK = "leb.ops.bench.scenarios:quick_check"
API_TOPUP = "leb.ops.bench.scenarios:api_topup"
CHECK_PATH = "/api/v1/lines/check"
ORDERS_PATH = "/api/v1/orders"
TEST_CARD = "4242 4242 4242 4242"
CARD_EXPIRY = "12/39"
POLLS = 50
POLL_PAUSE = 0.05
_CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def check_path(msisdn: str) -> str:
    return f"{CHECK_PATH}?number={quote(msisdn, safe='')}"


def quick_check(client: Client, params: dict[str, Any], msisdn: str, key: str) -> str:
    """One quick check of a number in service: 200 and its validity."""
    response = expect(client.request("GET", check_path(msisdn)), 200, f"GET {CHECK_PATH}")
    if b'"valid_until"' not in response.body:
        raise OperationFailed(f"GET {CHECK_PATH} answered without a validity: {response.body!r}")
    return ""


def _api_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra}


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def api_topup(client: Client, params: dict[str, Any], msisdn: str, key: str) -> str:
    """One top-up from order to `fulfilled`. Returns the order's public id."""
    token = params["token"]
    json_type = {"Content-Type": "application/json"}
    client.cookies.clear()
    created = client.request(
        "POST",
        ORDERS_PATH,
        _json({"number": msisdn, "plan_code": params["plan_code"]}),
        _api_headers(token, **json_type, **{"Idempotency-Key": key}),
    )
    order = expect(created, 201, f"POST {ORDERS_PATH}").json()["public_id"]
    started = client.request(
        "POST",
        f"{ORDERS_PATH}/{order}/payments",
        _json({"provider": "sandbox"}),
        _api_headers(token, **json_type),
    )
    payment = expect(started, 201, "POST /api/v1/orders/{id}/payments").json()
    attempt = payment["attempt"]
    checkout = urlsplit(payment["checkout_url"]).path
    # The user's browser at the gateway's hosted page: it has never been
    # here, so it gets its CSRF cookie with the page, and sends both back.
    page = expect(client.request("GET", checkout), 200, "GET the sandbox checkout")
    found = _CSRF_FIELD.search(page.body)
    if found is None:
        raise OperationFailed("the sandbox checkout page has no CSRF token")
    form = urlencode(
        {
            "csrfmiddlewaretoken": found.group(1).decode(),
            "number": TEST_CARD,
            "expiry": CARD_EXPIRY,
            "cvc": "123",
            "name": "Bench Payer",
        }
    ).encode()
    paid = client.request(
        "POST",
        checkout,
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": client.origin,
            "Referer": client.origin + checkout,
        },
    )
    expect(paid, 302, "POST the sandbox checkout")
    # The gateway sends the browser to leb's result page, which shows the
    # outcome to the browser that started the payment or to the signed-in
    # customer; the API client asks the API, as its documentation says.
    for _poll in range(POLLS):
        status = expect(
            client.request("GET", f"/api/v1/payments/{attempt}", headers=_api_headers(token)),
            200,
            "GET /api/v1/payments/{id}",
        ).json()
        if status["order_status"] == "fulfilled":
            return str(order)
        if status["status"] in ("failed", "cancelled") or status["order_status"] in (
            "failed",
            "expired",
            "cancelled",
        ):
            raise OperationFailed(f"payment {status['status']}, order {status['order_status']}")
        time.sleep(POLL_PAUSE)
    raise OperationFailed(f"order {order} not fulfilled after {POLLS} polls")
