"""The browser's middleware, left out for API calls that carry no session.

A call under an API prefix without the session cookie authenticates with a
token, an agent's signed key, or not at all: it has no session to load, no
signed-in user, no one-time-password device, no flashed messages and no
form to guard against cross-site posts (django-ninja marks every operation
CSRF-exempt and checks the token itself when a session signs a call in,
leb.api.auth.SessionAuth). Each class here is the Django (or django-otp)
middleware it subclasses, for every other request; for such a call it only
leaves on the response what the full one would have: `Vary: Cookie`, and
an anonymous `request.user`.

The host check (CommonMiddleware), the language (LocaleMiddleware), the
security headers, the request id and the metrics stay on every request. A
call that sends the session cookie goes the whole way, so an API operation
that accepts a session keeps it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware as _Csrf
from django.utils.cache import patch_vary_headers
from django_otp.middleware import OTPMiddleware as _OTP

from .problems import API_PREFIXES

_FLAG = "_leb_stateless_call"
_USER_SET = "_leb_stateless_user"


def stateless_api_call(request: HttpRequest) -> bool:
    """An API call without the session cookie (decided once per request)."""
    found = request.__dict__.get(_FLAG)
    if found is None:
        found = request.path_info.startswith(API_PREFIXES) and (
            settings.SESSION_COOKIE_NAME not in request.COOKIES
        )
        setattr(request, _FLAG, found)
    return bool(found)


class StatelessAnonymousUser(AnonymousUser):
    """request.user of a call without a session, as the full stack leaves
    an anonymous one (django-otp's attributes included)."""

    otp_device = None

    def is_verified(self) -> bool:
        return False


class _Skipped:
    """Mixin: pass a stateless call straight on. Async chains (ASGI) always
    take the full middleware; leb serves WSGI."""

    get_response: Any

    def _lean(self, request: HttpRequest) -> bool:
        if getattr(self, "async_mode", False) or getattr(self, "_is_async", False):
            return False
        return stateless_api_call(request)

    def __call__(self, request: HttpRequest) -> Any:
        if self._lean(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_Skipped, _Sessions):
    def __call__(self, request: HttpRequest) -> Any:
        if not self._lean(request):
            return super().__call__(request)
        response = self.get_response(request)
        # Once past the host check, the full stack reads the (empty) session
        # to find the user, which marks the answer as varying with the
        # cookie: caches must still tell a signed-in caller's answer apart.
        if request.__dict__.get(_USER_SET):
            patch_vary_headers(response, ("Cookie",))
        return response


class CsrfViewMiddleware(_Skipped, _Csrf):
    def process_view(
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> Any:
        if self._lean(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_Skipped, _Authentication):
    def __call__(self, request: HttpRequest) -> Any:
        if not self._lean(request):
            return super().__call__(request)
        user = StatelessAnonymousUser()
        request.user = user
        setattr(request, _USER_SET, True)

        async def auser() -> AnonymousUser:
            return user

        request.auser = auser
        return self.get_response(request)


class OTPMiddleware(_Skipped, _OTP):
    pass


class MessageMiddleware(_Skipped, _Messages):
    pass
