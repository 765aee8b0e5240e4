from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

SESSION_EPOCH_KEY = "leb_session_epoch"


class SessionEpochMiddleware:
    """Ends every session of an account whose epoch moved ("sign out everywhere")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            profile = getattr(user, "profile", None)
            if (
                profile is not None
                and request.session.get(SESSION_EPOCH_KEY) != profile.session_epoch
            ):
                logout(request)
        return self.get_response(request)
