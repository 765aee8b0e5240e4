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
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from leb.common import clock
from leb.common.formatting import TZ_SESSION_KEY, format_phone
from leb.common.ratelimit import client_ip
from leb.security.lockouts import locked_for, register_failure, register_success

from . import verification
from .actions import (
    do_register_user,
    do_reset_password,
    do_save_preferences,
    do_sign_out_everywhere,
    do_verify_email,
    do_verify_phone,
)
from .backends import lockout_identifier
from .forms import (
    LoginForm,
    OTPForm,
    PhoneCodeForm,
    PreferencesForm,
    RegistrationForm,
    SmsResetCodeForm,
    SmsResetRequestForm,
    VerifiedPasswordResetForm,
)
from .models import CodePurpose, PhoneCode, Profile
from .queries import email_verified, phone_verified

PENDING_USER_KEY = "leb_pending_user"
SMS_RESET_KEY = "leb_sms_reset"
BACKEND = "leb.accounts.backends.EmailOrPhoneBackend"


def _next_url(request: HttpRequest, default: str = "accounts:account") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse(default)


def _already_signed_in(request: HttpRequest) -> HttpResponse | None:
    """Someone signed in who opens the sign-in or sign-up page wants their lines."""
    if request.user.is_authenticated:
        return HttpResponseRedirect(_next_url(request, "mylines:list"))
    return None


def _locked_message(remaining: Any) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return _("Too many failed attempts. Try again in %(minutes)d minutes.") % {"minutes": minutes}


def _finish_login(request: HttpRequest, user: Any) -> HttpResponse:
    login(request, user, backend=BACKEND)
    return HttpResponseRedirect(_next_url(request))


def register_view(request: HttpRequest) -> HttpResponse:
    if (signed_in := _already_signed_in(request)) is not None:
        return signed_in
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
        login(request, user, backend=BACKEND)
        now = clock.now()
        if email:
            _send_email_link(request, user, now)
            return HttpResponseRedirect(_next_url(request))
        _send_phone_code(request, user, now)
        return redirect("accounts:verify_phone")
    return render(request, "accounts/register.html", {"form": form})


def login_view(request: HttpRequest) -> HttpResponse:
    if (signed_in := _already_signed_in(request)) is not None:
        return signed_in
    form = LoginForm(request.POST or None, request=request)
    status = 200
    if request.method == "POST":
        now = clock.now()
        identifier = lockout_identifier(request.POST.get("identifier") or "")
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
    """Second step of sign-in for accounts with an authenticator app; also
    for someone signed in whose session has not proven the code yet (pages
    such as the agent portal ask for it)."""
    pending = request.session.get(PENDING_USER_KEY)
    user: Any = get_user_model().objects.filter(pk=pending).first() if pending else None
    if user is None and _needs_code(request):
        user = request.user
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
                request.session.pop(PENDING_USER_KEY, None)
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


def _account_context(request: HttpRequest, preferences: PreferencesForm) -> dict[str, Any]:
    user: Any = request.user
    profile = Profile.objects.filter(user=user).first()
    return {
        "has_2fa": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "preferences": preferences,
        "phone": profile.phone if profile else "",
        "email_verified": email_verified(user),
        "phone_verified": phone_verified(user),
    }


@login_required
def account_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user  # signed in: login_required
    profile = Profile.objects.filter(user=user).first()
    preferences = PreferencesForm(
        initial={
            "language": (profile.language if profile and profile.language else get_language()),
            "time_zone": (
                profile.time_zone if profile and profile.time_zone else settings.TIME_ZONE
            ),
        }
    )
    return render(request, "accounts/account.html", _account_context(request, preferences))


@require_POST
@login_required
def preferences_view(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST)
    if not form.is_valid():
        context = _account_context(request, form)
        return render(request, "accounts/account.html", context, status=400)
    language, time_zone = form.cleaned_data["language"], form.cleaned_data["time_zone"]
    do_save_preferences(request.user, language=language, time_zone=time_zone)
    request.session[TZ_SESSION_KEY] = time_zone
    translation.activate(language)
    messages.success(request, _("Your preferences are saved."))
    response = redirect("accounts:account")
    response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
    return response


def _needs_code(request: HttpRequest) -> bool:
    """Signed in, with an authenticator app, but this session has not given a code."""
    user: Any = request.user
    return bool(
        user.is_authenticated
        and not user.is_verified()
        and TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    )


@login_required
def totp_setup_view(request: HttpRequest) -> HttpResponse:
    if _needs_code(request):
        # Replacing the app needs the current one first: else a stolen
        # password alone could swap in the thief's authenticator.
        nxt = request.GET.get("next")
        target = reverse("accounts:verify")
        return redirect(f"{target}?{urlencode({'next': nxt})}" if nxt else target)
    device, _created = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "authenticator"}
    )
    form = OTPForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            TOTPDevice.objects.filter(user=request.user, confirmed=True).delete()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            # The code just given proves the app: this session counts as verified.
            otp_login(request, device)
            messages.success(request, _("Two-step sign-in is on."))
            return HttpResponseRedirect(_next_url(request))
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
    form_class = VerifiedPasswordResetForm
    template_name = "accounts/password_reset.html"
    success_url = reverse_lazy("accounts:password_reset_done")


class ResetDoneView(PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class ResetConfirmView(PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        # As after a reset by SMS: every other session of the account ends.
        do_sign_out_everywhere(form.user)
        return response


class ResetCompleteView(PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


# --- Proving the email address and the mobile number ------------------------------


def _send_limited_message(remaining: Any) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return _("You have asked for too many codes or links. Try again in %(minutes)d minutes.") % {
        "minutes": minutes
    }


def _send_email_link(request: HttpRequest, user: Any, now: Any) -> bool:
    remaining = verification.send_blocked_for(user.email, client_ip(request), now)
    if remaining:
        messages.error(request, _send_limited_message(remaining))
        return False
    verification.count_send(user.email, client_ip(request), now)
    verification.send_verification_email(user, now)
    messages.info(
        request,
        _("We have sent a link to %(email)s. Open it to verify your email address.")
        % {"email": user.email},
    )
    return True


def _send_phone_code(request: HttpRequest, user: Any, now: Any) -> bool:
    profile = Profile.objects.get(user=user)
    phone = profile.phone or ""
    remaining = verification.send_blocked_for(phone, client_ip(request), now)
    if remaining:
        messages.error(request, _send_limited_message(remaining))
        return False
    # Queued with the code; the outbox texts it within seconds and retries a
    # failing gateway until the code expires.
    verification.send_code(CodePurpose.VERIFY_PHONE, user, phone, now)
    verification.count_send(phone, client_ip(request), now)
    messages.info(
        request,
        _("We have texted a 6-digit code to %(number)s.") % {"number": format_phone(phone)},
    )
    return True


def verify_email_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the verification email; it works signed in or not."""
    user, result = verification.user_for_email_token(token)
    if result is verification.LinkResult.VERIFIED and user is not None:
        do_verify_email(user, now=clock.now())
    status = 400 if result is verification.LinkResult.INVALID else 200
    return render(
        request,
        "accounts/verify_email_done.html",
        {"result": result.value, "email": user.email if user is not None else ""},
        status=status,
    )


@require_POST
@login_required
def send_email_link_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if not user.email:
        return redirect("accounts:account")
    if email_verified(user):
        messages.info(request, _("Your email address is already verified."))
    else:
        _send_email_link(request, user, clock.now())
    return redirect("accounts:account")


def _latest_phone_code(user: Any) -> PhoneCode | None:
    return (
        PhoneCode.objects.filter(user=user, purpose=CodePurpose.VERIFY_PHONE)
        .order_by("-created_at", "-pk")
        .first()
    )


def _code_state_message(state: verification.CodeState) -> str:
    if state is verification.CodeState.USED:
        return _("This code has already been used. Ask for a new one.")
    if state is verification.CodeState.EXPIRED:
        return _("This code has expired. Ask for a new one.")
    return _("Too many wrong codes. Ask for a new one.")


@login_required
def verify_phone_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    profile = Profile.objects.filter(user=user).first()
    if profile is None or not profile.phone:
        return redirect("accounts:account")
    if phone_verified(user):
        messages.info(request, _("Your mobile number is already verified."))
        return redirect("accounts:account")
    form = PhoneCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        now = clock.now()
        ip = client_ip(request)
        if "send" in request.POST:
            _send_phone_code(request, user, now)
            return redirect("accounts:verify_phone")
        row = _latest_phone_code(user)
        remaining = verification.code_locked_for(row, ip, now) if row is not None else None
        if row is None:
            form.errors.clear()
            form.add_error(None, _("Ask for a code first."))
            status = 400
        elif remaining:
            form.errors.clear()
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif (state := verification.code_state(row, now)) is not verification.CodeState.OPEN:
            form.errors.clear()
            form.add_error(None, _code_state_message(state))
            status = 400
        elif form.is_valid():
            if verification.code_matches(row, form.cleaned_data["code"]):
                register_success(verification.CODE_SCOPE, verification.code_keys(row, ip)[:1])
                if verification.use_code(row, now) and do_verify_phone(user, row.phone, now=now):
                    messages.success(request, _("Your mobile number is verified."))
                    return redirect("accounts:account")
                form.add_error(None, _("This code has already been used. Ask for a new one."))
                status = 400
            else:
                locked = verification.count_wrong_code(row, ip, now)
                if locked:
                    form.add_error(None, _locked_message(locked))
                    status = 429
                else:
                    form.add_error("code", _("This code is wrong or has expired."))
                    status = 400
        else:
            status = 400
    return render(
        request,
        "accounts/verify_phone.html",
        {"form": form, "phone": profile.phone},
        status=status,
    )


# --- Password reset by SMS -----------------------------------------------------------


def _reset_target(phone: str) -> Any | None:
    """The account a reset code may go to: one whose number is proven."""
    profile = (
        Profile.objects.select_related("user")
        .filter(phone=phone, phone_verified_at__isnull=False, user__is_active=True)
        .first()
    )
    return profile.user if profile is not None else None


def sms_reset_view(request: HttpRequest) -> HttpResponse:
    form = SmsResetRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            now = clock.now()
            phone = form.cleaned_data["phone"]
            remaining = verification.send_blocked_for(phone, client_ip(request), now)
            if remaining:
                form.add_error(None, _send_limited_message(remaining))
                status = 429
            else:
                # A number with no proven account gets a row too, and no SMS:
                # the next page looks the same either way.
                row = verification.send_code(
                    CodePurpose.RESET_PASSWORD, _reset_target(phone), phone, now
                )
                verification.count_send(phone, client_ip(request), now)
                request.session[SMS_RESET_KEY] = row.pk
                return redirect("accounts:password_reset_sms_code")
    return render(request, "accounts/password_reset_sms.html", {"form": form}, status=status)


def sms_reset_code_view(request: HttpRequest) -> HttpResponse:
    row_id = request.session.get(SMS_RESET_KEY)
    row = (
        PhoneCode.objects.select_related("user")
        .filter(pk=row_id, purpose=CodePurpose.RESET_PASSWORD)
        .first()
        if row_id
        else None
    )
    if row is None:
        return redirect("accounts:password_reset_sms")
    form = SmsResetCodeForm(request.POST or None, user=row.user)
    status = 200
    if request.method == "POST":
        now = clock.now()
        ip = client_ip(request)
        remaining = verification.code_locked_for(row, ip, now)
        state = verification.code_state(row, now)
        if remaining:
            form.errors.clear()
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif state is not verification.CodeState.OPEN:
            form.errors.clear()
            form.add_error(None, _code_state_message(state))
            status = 400
        elif not form.has_error("code") and "code" in form.cleaned_data:
            if verification.code_matches(row, form.cleaned_data["code"]):
                register_success(verification.CODE_SCOPE, verification.code_keys(row, ip)[:1])
                if form.is_valid() and row.user is not None:
                    if verification.use_code(row, now):
                        do_reset_password(row.user, form.cleaned_data["new_password1"])
                        del request.session[SMS_RESET_KEY]
                        return redirect("accounts:password_reset_complete")
                    form.add_error(None, _code_state_message(verification.CodeState.USED))
                status = 400
            else:
                # A wrong code says nothing about the new password.
                form.errors.clear()
                locked = verification.count_wrong_code(row, ip, now)
                if locked:
                    form.add_error(None, _locked_message(locked))
                    status = 429
                else:
                    form.add_error("code", _("This code is wrong or has expired."))
                    status = 400
        else:
            status = 400
    return render(
        request,
        "accounts/password_reset_sms_code.html",
        {"form": form, "phone": row.phone},
        status=status,
    )
