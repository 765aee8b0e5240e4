"""One client address for every limit: behind trusted proxies the portal and
the API both count the visitor, not the proxy, and a spoofed
X-Forwarded-For picks no bucket."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from leb.common.ratelimit import client_ip

PROXY = "10.0.0.2"  # the proxy nearest leb: REMOTE_ADDR
OUTER_PROXY = "10.0.0.1"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def via_proxies(visitor: str, *, spoofed: str = "") -> dict[str, Any]:
    """What leb sees from a visitor behind two proxies: each proxy appends
    the address it was reached from."""
    chain = [spoofed] if spoofed else []
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": ", ".join([*chain, visitor, OUTER_PROXY])}


@pytest.mark.parametrize(
    ("proxies", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "1.1.1.1"}, "203.0.113.9"),
        (1, {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.9"}, "203.0.113.9"),
        (2, via_proxies("203.0.113.9"), "203.0.113.9"),
        (2, via_proxies("203.0.113.9", spoofed="1.1.1.1"), "203.0.113.9"),
        (2, {"REMOTE_ADDR": PROXY}, PROXY),
        (2, {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "not-an-ip, 10.0.0.1"}, PROXY),
        (1, {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "2001:DB8::1"}, "2001:db8::1"),
    ],
)
def test_client_ip(settings: Any, proxies: int, meta: dict[str, Any], expected: str) -> None:
    settings.NUM_PROXIES = proxies
    assert client_ip(RequestFactory().get("/", **meta)) == expected


@pytest.mark.django_db
def test_behind_proxies_two_visitors_have_their_own_portal_bucket(settings: Any) -> None:
    # given two trusted proxies and a limit of one quick check a minute
    settings.NUM_PROXIES = 2
    settings.PORTAL_QUICK_CHECK_RATE = "1/60"
    client = Client()

    def check(visitor: str, **extra: str) -> int:
        meta = via_proxies(visitor, **extra)
        return client.post("/", {"number": "+85294000001"}, **meta).status_code

    # when the first visitor uses their check, then tries again (even spoofing)
    first = check("203.0.113.1")
    again = check("203.0.113.1", spoofed="198.51.100.77")
    # and a second visitor comes through the same proxies
    second = check("203.0.113.2")

    # then the first is limited, the second is not
    assert (first, again, second) == (200, 429, 200)


@pytest.mark.django_db
def test_behind_proxies_two_visitors_have_their_own_api_bucket(settings: Any) -> None:
    settings.NUM_PROXIES = 2
    settings.API_LINE_CHECK_RATE = "1/m"
    client = Client()

    def check(visitor: str, **extra: str) -> int:
        meta = via_proxies(visitor, **extra)
        return client.get("/api/v1/lines/check", {"number": "+85294000001"}, **meta).status_code

    first = check("203.0.113.1")
    again = check("203.0.113.1", spoofed="198.51.100.77")
    second = check("203.0.113.2")

    assert first != 429
    assert (again, second) == (429, first)


@pytest.mark.django_db
def test_the_portal_and_the_api_name_the_same_visitor(settings: Any) -> None:
    # given: the same visitor is counted as one address by both channels
    settings.NUM_PROXIES = 2
    portal = RequestFactory().post("/", **via_proxies("203.0.113.5"))
    api = RequestFactory().get("/api/v1/lines/check", **via_proxies("203.0.113.5"))
    assert client_ip(portal) == client_ip(api) == "203.0.113.5"


@pytest.mark.django_db
def test_the_ussd_allow_list_sees_the_gateway_behind_the_proxies(settings: Any) -> None:
    # given the USSD gateway at 198.51.100.10, reaching leb through the proxies
    settings.NUM_PROXIES = 2
    settings.USSD_SECRET = "ussd-secret-for-tests"
    settings.USSD_ALLOWED_IPS = ["198.51.100.10"]
    auth = "Basic " + base64.b64encode(b"gw:ussd-secret-for-tests").decode()
    data = {"sessionId": "s1", "serviceCode": "*123#", "phoneNumber": "+85294000001", "text": ""}

    def send(source: str) -> int:
        response = Client().post(
            "/phone/ussd", data, HTTP_AUTHORIZATION=auth, **via_proxies(source)
        )
        return response.status_code

    # when / then: the gateway is let in, another address is not
    assert send("198.51.100.10") == 200
    assert send("203.0.113.9") == 403
