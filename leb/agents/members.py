"""Who may use the agent portal, and the signed values its forms carry.

A page of the portal is served only to a member of an agent (AgentMember),
signed in, with a confirmed authenticator app and a session that gave its
code (`user.is_verified()`), and only while the agent is active. The number
being sold to and the sale being confirmed travel in signed, time-limited
tokens bound to the agent, so a form cannot be pointed at another line,
plan or external id than the one the server priced."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.common.signing import ClockSigner

from .models import AgentMember, AgentStatus

LINE_SALT = "leb.agents.portal.line"
SALE_SALT = "leb.agents.portal.sale"
# How long a chosen number and a priced sale stay usable in the forms.
LINE_MAX_AGE = 30 * 60
SALE_MAX_AGE = 15 * 60
EXTERNAL_ID_PREFIX = "portal-"

PortalView = Callable[..., HttpResponse]


class TokenInvalid(Exception):
    pass


class TokenExpired(TokenInvalid):
    pass


def member_of(user: Any) -> AgentMember | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return AgentMember.objects.select_related("agent", "user").filter(user=user).first()


def _private(response: HttpResponse) -> HttpResponse:
    # Balances, statements and keys: never kept by a shared cache.
    response["Cache-Control"] = "private, no-store"
    return response


def _with_next(name: str, request: HttpRequest) -> str:
    return f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"


def portal_page(*, owner_only: bool = False) -> Callable[[PortalView], PortalView]:
    """Serve the view to a verified member of an active agent, as
    `view(request, member, ...)`; everyone else is sent to sign in, to set up
    or give their code, or refused."""

    def decorate(view: PortalView) -> PortalView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user: Any = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("accounts:login"))
            member = member_of(user)
            if member is None:
                return _private(render(request, "agents/portal/not_member.html", status=403))
            if not user.is_verified():
                if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                    return redirect(_with_next("accounts:verify", request))
                return redirect(_with_next("accounts:totp_setup", request))
            if member.agent.status != AgentStatus.ACTIVE:
                context = {"member": member, "agent": member.agent}
                return _private(
                    render(request, "agents/portal/suspended.html", context, status=403)
                )
            if owner_only and not member.is_owner:
                context = {"member": member, "agent": member.agent}
                return _private(
                    render(request, "agents/portal/owner_only.html", context, status=403)
                )
            return _private(view(request, member, *args, **kwargs))

        return wrapper

    return decorate


# --- Signed tokens -----------------------------------------------------------------


def _dumps(value: dict[str, Any], salt: str) -> str:
    return ClockSigner(salt=salt).sign_object(value, compress=True)


def _loads(token: str, salt: str, max_age: int) -> dict[str, Any]:
    try:
        value = ClockSigner(salt=salt).unsign_object(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenExpired from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise TokenInvalid from exc
    if not isinstance(value, dict):
        raise TokenInvalid
    return value


def line_token(member: AgentMember, line_id: int) -> str:
    return _dumps({"a": member.agent.code, "l": line_id}, LINE_SALT)


def line_from_token(member: AgentMember, token: str) -> int:
    value = _loads(token, LINE_SALT, LINE_MAX_AGE)
    if value.get("a") != member.agent.code or not isinstance(value.get("l"), int):
        raise TokenInvalid
    return int(value["l"])


@dataclass(frozen=True)
class SaleTicket:
    """What the confirm form stands for: this line, this plan, at these terms,
    under this external id (new for every confirm form)."""

    line_id: int
    plan_code: str
    external_id: str
    wholesale: int
    days_added: int
    new_valid_until: str

    @classmethod
    def new(
        cls, line_id: int, plan_code: str, wholesale: int, days_added: int, new_valid_until: str
    ) -> SaleTicket:
        external_id = EXTERNAL_ID_PREFIX + secrets.token_hex(10)
        return cls(line_id, plan_code, external_id, wholesale, days_added, new_valid_until)

    def to_token(self, member: AgentMember) -> str:
        return _dumps(
            {
                "a": member.agent.code,
                "l": self.line_id,
                "p": self.plan_code,
                "x": self.external_id,
                "w": self.wholesale,
                "d": self.days_added,
                "v": self.new_valid_until,
            },
            SALE_SALT,
        )

    @classmethod
    def from_token(cls, member: AgentMember, token: str) -> SaleTicket:
        value = _loads(token, SALE_SALT, SALE_MAX_AGE)
        if value.get("a") != member.agent.code:
            raise TokenInvalid
        try:
            return cls(
                line_id=int(value["l"]),
                plan_code=str(value["p"]),
                external_id=str(value["x"]),
                wholesale=int(value["w"]),
                days_added=int(value["d"]),
                new_valid_until=str(value["v"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TokenInvalid from exc
