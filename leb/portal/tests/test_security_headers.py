from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

MIDDLEWARE = "leb.portal.middleware.SecurityHeadersMiddleware"


@pytest.fixture
def secured(settings: Any) -> Any:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, MIDDLEWARE]
    settings.SITE_URL = "http://testserver"
    return settings


def directives(header: str) -> dict[str, list[str]]:
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


@pytest.mark.parametrize("url", ["/", "/announcements/", "/help/", "/announcements/feed.atom"])
def test_security_headers_on_portal_pages(secured: Any, url: str) -> None:
    # when
    response = Client().get(url)

    # then
    csp = directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert any(v.startswith("'nonce-") for v in csp["script-src"])
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_nonce_is_fresh_per_response(secured: Any) -> None:
    # when
    first = Client().get("/")["Content-Security-Policy"]
    second = Client().get("/")["Content-Security-Policy"]

    # then
    assert first != second


def test_payment_hosts_may_receive_forms(secured: Any) -> None:
    # given
    secured.PAYMENT_FORM_ACTION_HOSTS = ["https://checkout.example.com", "https://pay.example.net"]

    # when
    response = Client().get("/")

    # then
    csp = directives(response["Content-Security-Policy"])
    assert csp["form-action"] == [
        "'self'",
        "https://checkout.example.com",
        "https://pay.example.net",
    ]


def test_a_view_policy_is_left_alone(secured: Any) -> None:
    # given: exempt prefix for third-party pages
    secured.CSP_EXEMPT_PATH_PREFIXES = ["/help/"]

    # when
    response = Client().get("/help/")

    # then
    assert "Content-Security-Policy" not in response
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_headers_on_404(secured: Any) -> None:
    # when
    response = Client().get("/announcements/no-such-thing/")

    # then
    assert response.status_code == 404
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_no_template_carries_code_the_policy_would_block() -> None:
    # given every template leb ships (the policy allows scripts and styles from
    # leb's own files only, and inline scripts only with the page's nonce)
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    inline = re.compile(
        r"<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:|<script(?![^>]*\bsrc=)(?![^>]*\bnonce=)",
        re.IGNORECASE,
    )

    # when they are searched for inline styles, handlers and scripts
    found = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.glob("**/templates/**/*.html"))
        for number, text in enumerate(path.read_text().splitlines(), 1)
        if inline.search(text)
    ]

    # then there is none
    assert not found, found


def test_the_policy_follows_the_site_url_from_one_request_to_the_next(secured: Any) -> None:
    # when
    before = directives(Client().get("/")["Content-Security-Policy"])
    secured.SITE_URL = "https://return.example"
    after = directives(Client().get("/")["Content-Security-Policy"])
    secured.SITE_URL = "http://testserver"
    again = directives(Client().get("/")["Content-Security-Policy"])

    # then
    assert before["form-action"] == ["'self'"] == again["form-action"]
    assert after["form-action"] == ["'self'", "https://return.example"]
    assert before["script-src"] != again["script-src"]  # a fresh nonce each time
