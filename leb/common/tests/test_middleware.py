"""An API call without the session cookie skips the browser's middleware
(session, CSRF, user, one-time password, messages); everything else keeps
the whole stack, and every answer keeps its headers, request id and metrics."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core import checks
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from leb.common import middleware
from leb.observability.tests.test_metrics import scrape, value
from leb.testing import assert_problem, bearer

CHECK = "/api/v1/lines/check"
SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "X-Request-ID",
    "Content-Language",
)


def _chain(request: HttpRequest) -> dict[str, Any]:
    """Run the request through leb's session, CSRF, user, OTP and message
    middleware in settings order; return what the view would see."""
    seen: dict[str, Any] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen["session"] = hasattr(request, "session")
        seen["messages"] = hasattr(request, "_messages")
        seen["user"] = request.user
        seen["verified"] = request.user.is_verified()  # type: ignore[union-attr]
        return HttpResponse("ok")

    handler: Any = view
    for cls in (
        middleware.MessageMiddleware,
        middleware.OTPMiddleware,
        middleware.AuthenticationMiddleware,
        middleware.CsrfViewMiddleware,
        middleware.SessionMiddleware,
    ):
        handler = cls(handler)
    seen["response"] = handler(request)
    return seen


@pytest.mark.parametrize("path", ["/api/v1/lines/check", "/agent/v1/topups", "/api/v1/nothing"])
def test_an_api_call_without_a_session_skips_the_browser_middleware(path: str) -> None:
    # when
    seen = _chain(RequestFactory().get(path))

    # then
    assert seen["session"] is False and seen["messages"] is False
    assert isinstance(seen["user"], AnonymousUser) and not seen["user"].is_authenticated
    assert seen["verified"] is False
    assert seen["response"]["Vary"] == "Cookie"
    assert not seen["response"].cookies


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/me/lines", "/help/", "/api/docs", "/api/v1"])
def test_a_session_or_a_page_gets_the_whole_stack(path: str) -> None:
    # given: the API with the session cookie, and pages with or without it
    factory = RequestFactory()
    with_cookie = factory.get(path)
    with_cookie.COOKIES["sessionid"] = "not-a-session"
    page = factory.get(path)

    # when
    seen = [_chain(with_cookie)]
    if not path.startswith("/api/v1/"):
        seen.append(_chain(page))

    # then
    for one in seen:
        assert one["response"]["Vary"] == "Cookie"
        assert one["session"] is True and one["messages"] is True
        assert one["verified"] is False


def test_the_decision_is_taken_once_per_request() -> None:
    request = RequestFactory().get(CHECK)
    assert middleware.stateless_api_call(request) is True
    request.COOKIES["sessionid"] = "late"
    assert middleware.stateless_api_call(request) is True


def test_the_admin_still_finds_its_middleware() -> None:
    # Django's admin checks look for the session, user and message middleware.
    errors = [e for e in checks.run_checks() if (e.id or "").startswith("admin.")]
    assert errors == []


@pytest.mark.django_db
def test_a_stateless_api_answer_keeps_every_header(anonymous: Client) -> None:
    # when
    response = anonymous.get(CHECK, {"number": "+85294999999"}, HTTP_ACCEPT_LANGUAGE="zh-hant")

    # then
    assert_problem(response, 404, "line_not_found")
    for header in SECURITY_HEADERS:
        assert response.has_header(header), header
    assert response["Content-Language"] == "zh-hant"
    assert response["Vary"] == "Accept-Language, Cookie"
    assert not response.cookies


@pytest.mark.django_db
def test_the_language_cookie_still_chooses_the_language_of_an_api_answer(
    anonymous: Client,
) -> None:
    # given
    anonymous.cookies["django_language"] = "zh-hans"

    # when
    response = anonymous.get(CHECK, {"number": "12345"})

    # then
    assert_problem(response, 422, "msisdn_invalid")
    assert response.json()["detail"] == "12345 不是有效的电话号码。"


@pytest.mark.django_db
def test_the_host_check_still_refuses_an_unknown_host(anonymous: Client) -> None:
    response = anonymous.get(CHECK, {"number": "+85294999999"}, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.has_header("X-Request-ID")
    assert response.has_header("Content-Security-Policy")


@pytest.mark.django_db
def test_stateless_api_calls_are_counted(anonymous: Client) -> None:
    # given
    before = scrape(anonymous)

    # when
    anonymous.get(CHECK, {"number": "+85294999999"})
    after = scrape(anonymous)

    # then
    labels = {"view": "api-v1:check_line", "method": "GET", "status": "404"}
    assert (
        value(after, "leb_http_requests_total", **labels)
        - value(before, "leb_http_requests_total", **labels)
        == 1
    )


@pytest.mark.django_db
def test_a_session_still_signs_an_api_call_in(owner_client: Client) -> None:
    # when
    response = owner_client.get("/api/v1/me/lines")

    # then
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.django_db
def test_a_session_still_needs_its_csrf_token_to_change_anything(owner: Any) -> None:
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner, backend="leb.accounts.backends.EmailOrPhoneBackend")

    # when
    response = client.post(
        "/api/v1/quotes", {"number": "+85294999999", "amount": 100}, content_type="application/json"
    )

    # then
    assert_problem(response, 403, "csrf_failed")


@pytest.mark.django_db
def test_a_token_call_needs_no_session(owner_token: str, anonymous: Client) -> None:
    # when
    response = anonymous.get("/api/v1/me/lines", **bearer(owner_token))

    # then
    assert response.status_code == 200
    assert not response.cookies
