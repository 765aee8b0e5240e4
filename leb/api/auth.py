"""Who is calling: a personal token, a session, or a guest.

A request that sends a bearer token must send a valid one, even to an
endpoint guests may use, so a client never silently acts as a guest. A session
counts only with a valid CSRF token on unsafe methods, as for every form.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import AuthenticationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from leb.common.problems import Problem

from .actions import authenticate_token

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class TokenAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get(self.header)
        if not header:
            return None
        scheme, _sep, value = header.partition(" ")
        if scheme.lower() != self.openapi_scheme:
            raise AuthenticationError()
        return self.authenticate(request, value)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = authenticate_token(token)
        if found is None:
            raise AuthenticationError()
        request.api_token = found  # type: ignore[attr-defined]
        return found.user


class SessionAuth(APIKeyCookie):
    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        exempt = getattr(request, "_ninja_csrf_exempt", False)
        unsafe = request.method not in SAFE_METHODS
        if self.csrf and not exempt and unsafe and check_csrf(request) is not None:
            raise Problem(
                403, "csrf_failed", _("The CSRF check failed: reload the page and try again.")
            )
        return user


class Guest:
    """The caller of a guest-allowed endpoint who did not sign in."""

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "guest"


GUEST = Guest()


def guest(request: HttpRequest) -> Guest:
    return GUEST


token_auth = TokenAuth()
session_auth = SessionAuth()
SIGNED_IN = [token_auth, session_auth]
ANYONE = [token_auth, session_auth, guest]
# OpenAPI: signing in is optional on guest endpoints (the empty requirement,
# added to the TokenAuth and SessionAuth ones django-ninja lists for ANYONE).
OPTIONAL_SECURITY: dict[str, Any] = {"security": [{}]}


def user_of(request: HttpRequest) -> Any:
    """The signed-in user, or None for a guest."""
    auth = getattr(request, "auth", None)
    if auth is None or isinstance(auth, Guest):
        return None
    return auth
