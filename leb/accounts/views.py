"""Sign-up, sign-in (with lockout and optional TOTP), sign-out everywhere, 2FA setup."""

from __future__ import annotations

import base64
import math
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import (
    PasswordResetCompleteView,
    PasswordResetConfirmView,
    PasswordResetDoneView,
    PasswordResetView,
)
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb import clock
from leb.portal.formatting import TZ_SESSION_KEY
from leb.security.lockouts import locked_for, register_failure, register_success

from .actions import do_register_user, do_save_preferences, do_sign_out_everywhere
from .forms import LoginForm, OTPForm, PreferencesForm, RegistrationForm

PENDING_USER_KEY = "leb_pending_user"
BACKEND = "leb.accounts.backends.EmailOrPhoneBackend"


def client_ip(request: HttpRequest) -> str:
    # Behind a proxy, SecurityMiddleware's trusted proxy sets REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR", "")


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("accounts:account")


def _locked_message(remaining: Any) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return _("Too many failed attempts. Try again in %(minutes)d minutes.") % {"minutes": minutes}


def _finish_login(request: HttpRequest, user: Any) -> HttpResponse:
    login(request, user, backend=BACKEND)
    return HttpResponseRedirect(_next_url(request))


def register_view(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email, phone = form.cleaned_data["identifier"]
        user = do_register_user(
            email=email,
            phone=phone,
            password=form.cleaned_data["password1"],
            language=get_language() or "",
        )
        messages.success(request, _("Welcome to leb. Your account is ready."))
        return _finish_login(request, user)
    return render(request, "accounts/register.html", {"form": form})


def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None, request=request)
    status = 200
    if request.method == "POST":
        now = clock.now()
        identifier = (request.POST.get("identifier") or "").strip().lower()
        keys = [f"id:{identifier}", f"ip:{client_ip(request)}"]
        remaining = locked_for("login", keys, now)
        if remaining:
            form.is_valid()
            form.errors.clear()
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif form.is_valid():
            register_success("login", keys[:1])
            user = form.user
            if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                request.session[PENDING_USER_KEY] = user.pk
                target = reverse("accounts:verify")
                nxt = request.POST.get("next")
                return redirect(f"{target}?next={nxt}" if nxt else target)
            return _finish_login(request, user)
        elif form.has_error("__all__", "invalid_login"):
            locked = register_failure("login", keys, now)
            if locked:
                form.errors.clear()
                form.add_error(None, _locked_message(locked))
                status = 429
    return render(
        request,
        "accounts/login.html",
        {"form": form, "next": request.GET.get("next", "")},
        status=status,
    )


def verify_view(request: HttpRequest) -> HttpResponse:
    """Second step of sign-in for accounts with an authenticator app."""
    pending = request.session.get(PENDING_USER_KEY)
    user = get_user_model().objects.filter(pk=pending).first() if pending else None
    if user is None:
        return redirect("accounts:login")
    form = OTPForm(request.POST or None)
    status = 200
    if request.method == "POST":
        now = clock.now()
        keys = [f"user:{user.pk}", f"ip:{client_ip(request)}"]
        remaining = locked_for("otp", keys, now)
        if remaining:
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif form.is_valid():
            device = next(
                (
                    d
                    for d in TOTPDevice.objects.filter(user=user, confirmed=True)
                    if d.verify_token(form.cleaned_data["code"])
                ),
                None,
            )
            if device is not None:
                register_success("otp", keys[:1])
                del request.session[PENDING_USER_KEY]
                response = _finish_login(request, user)
                otp_login(request, device)
                return response
            register_failure("otp", keys, now)
            form.add_error("code", _("This code is wrong or has expired."))
    return render(request, "accounts/verify.html", {"form": form}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, _("You have signed out."))
    return redirect("portal:home")


@require_POST
@login_required
def logout_everywhere_view(request: HttpRequest) -> HttpResponse:
    do_sign_out_everywhere(request.user)
    logout(request)
    messages.info(request, _("You have been signed out on every device."))
    return redirect("accounts:login")


@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    has_2fa = TOTPDevice.objects.filter(user=request.user, confirmed=True).exists()
    profile = getattr(request.user, "profile", None)
    preferences = PreferencesForm(
        initial={
            "language": (profile.language if profile and profile.language else get_language()),
            "time_zone": (
                profile.time_zone if profile and profile.time_zone else settings.TIME_ZONE
            ),
        }
    )
    return render(
        request, "accounts/account.html", {"has_2fa": has_2fa, "preferences": preferences}
    )


@require_POST
@login_required
def preferences_view(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        has_2fa = TOTPDevice.objects.filter(user=request.user, confirmed=True).exists()
        context = {"has_2fa": has_2fa, "preferences": form}
        return render(request, "accounts/account.html", context, status=400)
    language, time_zone = form.cleaned_data["language"], form.cleaned_data["time_zone"]
    do_save_preferences(request.user, language=language, time_zone=time_zone)
    request.session[TZ_SESSION_KEY] = time_zone
    translation.activate(language)
    messages.success(request, _("Your preferences are saved."))
    response = redirect("accounts:account")
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


@login_required
def totp_setup_view(request: HttpRequest) -> HttpResponse:
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = OTPForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            TOTPDevice.objects.filter(user=request.user, confirmed=True).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            messages.success(request, _("Two-step sign-in is on."))
            return redirect("accounts:account")
        form.add_error("code", _("This code is wrong or has expired."))
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4)
    # The same key as in the QR code, for typing into the app by hand.
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request, "accounts/totp_setup.html", {"form": form, "qr_svg": qr_svg, "secret": secret}
    )


@require_POST
@login_required
def totp_disable_view(request: HttpRequest) -> HttpResponse:
    form = OTPForm(request.POST)
    devices = TOTPDevice.objects.filter(user=request.user, confirmed=True)
    if form.is_valid() and any(d.verify_token(form.cleaned_data["code"]) for d in devices):
        devices.delete()
        messages.success(request, _("Two-step sign-in is off."))
    else:
        messages.error(request, _("This code is wrong or has expired."))
    return redirect("accounts:account")


class ResetView(PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class ResetDoneView(PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class ResetConfirmView(PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class ResetCompleteView(PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
