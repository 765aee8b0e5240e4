"""The subscriber's own lines: bind (prove and link), list, line page, unbind."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from leb.common import clock
from leb.common.formatting import format_local_date, format_phone, user_timezone
from leb.common.ratelimit import client_ip
from leb.lines import lifecycle
from leb.lines.actions import needs_real_name
from leb.lines.models import Line
from leb.provisioning.actions import ProvisioningError, do_redownload_profile
from leb.provisioning.models import Profile
from leb.provisioning.queries import esim_status
from leb.security.lockouts import locked_for, register_failure, register_success
from leb.topups.links import top_up_url

from . import binding, queries
from .binding import BindResult, ChallengeState
from .forms import METHOD_SMS, BindLineForm, SmsCodeForm
from .models import BindingChallenge


def _locked_message(remaining: timedelta) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return _("Too many failed attempts. Try again in %(minutes)d minutes.") % {"minutes": minutes}


def _not_verified_message() -> str:
    # The same words for an unknown ICCID/number pair and a wrong code.
    return _("We could not verify this line. Check the details and try again.")


def _taken_message() -> str:
    return _(
        "This line is linked to another account. Its owner can remove it from their "
        "account, or contact support if you think this is a mistake."
    )


def _finish_binding(request: HttpRequest, line: Line, now: datetime) -> HttpResponse | None:
    """Bind after a successful proof; None (with a form error to show) if the
    line belongs to someone else."""
    result = binding.bind_line(line, request.user, now)
    if result is BindResult.OWNED_BY_SOMEONE_ELSE:
        return None
    number = format_phone(line.msisdn)
    if result is BindResult.BOUND:
        messages.success(
            request, _("%(number)s is now linked to your account.") % {"number": number}
        )
    else:
        messages.info(request, _("%(number)s is already in your account.") % {"number": number})
    return redirect("mylines:line", line_id=line.pk)


@login_required
def bind_view(request: HttpRequest) -> HttpResponse:
    form = BindLineForm(request.POST or None)
    status = 200
    if request.method == "POST":
        now = clock.now()
        user = request.user
        ip = client_ip(request)
        keys = [f"user:{user.pk}", f"ip:{ip}"]
        line = None
        if form.is_valid():
            iccid, msisdn = form.cleaned_data["iccid"], form.cleaned_data["number"]
            line = binding.find_line(iccid, msisdn)
            keys = binding.lockout_keys(user, line, iccid, msisdn, ip)
        remaining = locked_for(binding.SCOPE, keys, now)
        if remaining:
            form.errors.clear()
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif form.is_valid():
            if form.cleaned_data["method"] == METHOD_SMS:
                return _send_code(request, form, line, now)
            if line is not None and binding.activation_code_matches(
                line, form.cleaned_data["activation_code"]
            ):
                register_success(binding.SCOPE, keys[:2])
                response = _finish_binding(request, line, now)
                if response is not None:
                    return response
                form.add_error(None, _taken_message())
            else:
                locked = register_failure(binding.SCOPE, keys, now)
                if locked:
                    form.add_error(None, _locked_message(locked))
                    status = 429
                else:
                    form.add_error(None, _not_verified_message())
    return render(request, "mylines/bind.html", {"form": form}, status=status)


def _send_code(
    request: HttpRequest, form: BindLineForm, line: Line | None, now: datetime
) -> HttpResponse:
    user = request.user
    if binding.recent_challenges(user, now) >= binding.sms_per_hour():
        form.add_error(None, _("You have asked for too many codes. Try again in an hour."))
        return render(request, "mylines/bind.html", {"form": form}, status=429)
    iccid, msisdn = form.cleaned_data["iccid"], form.cleaned_data["number"]
    # The outbox texts the code within seconds and retries a failing gateway
    # until the code expires.
    challenge = binding.send_challenge(
        user, line, iccid, msisdn, now, language=get_language() or settings.LANGUAGE_CODE
    )
    return redirect("mylines:bind_confirm", challenge_id=challenge.pk)


@login_required
def bind_confirm_view(request: HttpRequest, challenge_id: int) -> HttpResponse:
    challenge = get_object_or_404(
        BindingChallenge.objects.select_related("line__phone_number", "line__policy"),
        pk=challenge_id,
        user=request.user,
    )
    form = SmsCodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        now = clock.now()
        keys = binding.lockout_keys(
            request.user, challenge.line, challenge.iccid, challenge.msisdn, client_ip(request)
        )
        state = binding.challenge_state(challenge, now)
        remaining = locked_for(binding.SCOPE, keys, now)
        if remaining:
            form.errors.clear()
            form.add_error(None, _locked_message(remaining))
            status = 429
        elif state is ChallengeState.USED:
            form.add_error(None, _("This code has already been used. Ask for a new one."))
        elif state is ChallengeState.EXPIRED:
            form.add_error(None, _("This code has expired. Ask for a new one."))
        elif state is ChallengeState.EXHAUSTED:
            form.add_error(None, _("Too many wrong codes. Ask for a new one."))
        elif form.is_valid():
            line = challenge.line
            if line is not None and binding.code_matches(challenge, form.cleaned_data["code"]):
                register_success(binding.SCOPE, keys[:2])
                if binding.line_is_free_for(line, request.user):
                    if not binding.use_challenge(challenge, now):
                        form.add_error(
                            None, _("This code has already been used. Ask for a new one.")
                        )
                    else:
                        response = _finish_binding(request, line, now)
                        if response is not None:
                            return response
                        form.add_error(None, _taken_message())
                else:
                    form.add_error(None, _taken_message())
            else:
                binding.count_wrong_code(challenge)
                locked = register_failure(binding.SCOPE, keys, now)
                if locked:
                    form.add_error(None, _locked_message(locked))
                    status = 429
                else:
                    form.add_error(None, _not_verified_message())
    return render(
        request,
        "mylines/bind_confirm.html",
        {
            "form": form,
            "challenge": challenge,
            "minutes": int(binding.code_ttl().total_seconds() // 60),
        },
        status=status,
    )


@login_required
def line_list_view(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    return render(
        request,
        "mylines/list.html",
        {"summaries": queries.line_summaries(request.user, now), "now": now},
    )


def _timeline_sentences(line: Line, now: datetime, tz: tzinfo) -> list[dict[str, Any]]:
    """The line's lifecycle dates as plain sentences, past or future."""
    future = {
        "grace_from": _(
            "If you do not top up, from %(date)s the number can only receive calls and messages."
        ),
        "suspended_from": _("If you do not top up, the number will be suspended on %(date)s."),
        "number_lost": _("If you do not top up, the number will be reclaimed on %(date)s."),
        "number_released": _("The number may be given to someone else from %(date)s."),
    }
    past = {
        "grace_from": _(
            "Validity ended on %(date)s: the number can only receive calls and messages."
        ),
        "suspended_from": _("The number has been suspended since %(date)s."),
        "number_lost": _("The number was reclaimed on %(date)s."),
        "number_released": _("The number was released on %(date)s."),
    }
    sentences = []
    for entry in lifecycle.timeline(line, now):
        words = (past if entry.is_past else future).get(entry.event)
        if words is None:
            continue
        sentences.append(
            {
                "at": entry.at,
                "text": words % {"date": format_local_date(entry.at, tz)},
                "is_past": entry.is_past,
                "status": entry.status,
            }
        )
    return sentences


def _owned_line_or_404(request: HttpRequest, line_id: int) -> Line:
    # Someone else's line is "not found", never "forbidden": ids reveal nothing.
    return get_object_or_404(queries.owned_lines(request.user), pk=line_id)


@login_required
def line_view(request: HttpRequest, line_id: int) -> HttpResponse:
    now = clock.now()
    line = _owned_line_or_404(request, line_id)
    summary = queries.summarize(line, now)
    esim = esim_status(line, now)
    if esim is not None and esim.profile is not None:
        # A provisioned eSIM: the code only while the SM-DP+ accepts it.
        code = esim.activation_code
    else:
        legacy = queries.shows_activation(line, summary.status) and not needs_real_name(line)
        code = line.activation_code if legacy else ""
    show_activation = bool(code)
    return render(
        request,
        "mylines/line.html",
        {
            "summary": summary,
            "line": line,
            "now": now,
            # The notice above carries the prominent button; no second one.
            "needs_top_up": lifecycle.urgency(line, now).needs_top_up,
            "top_up_url": top_up_url(line.pk),
            "timeline": _timeline_sentences(line, now, user_timezone(request)),
            "topups": queries.recent_topups(line),
            "show_activation": show_activation,
            "qr_svg": queries.activation_qr_svg(code) if show_activation else "",
            "activation_code": f"LPA:{code}" if show_activation else "",
            "esim": esim,
        },
    )


@require_POST
@login_required
def redownload_view(request: HttpRequest, line_id: int) -> HttpResponse:
    """ "My phone was reset": order the deleted eSIM again (limited, audited)."""
    line = _owned_line_or_404(request, line_id)
    profile = get_object_or_404(Profile, line=line)
    try:
        do_redownload_profile(profile, actor=f"user:{request.user.pk}")
    except ProvisioningError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(
            request, _("Your eSIM is ready to download again: scan the new code below.")
        )
    return redirect("mylines:line", line_id=line.pk)


@require_POST
@login_required
def unbind_view(request: HttpRequest, line_id: int) -> HttpResponse:
    line = _owned_line_or_404(request, line_id)
    binding.unbind_line(line, request.user, clock.now())
    messages.success(
        request,
        _("%(number)s was removed from your account.") % {"number": format_phone(line.msisdn)},
    )
    return redirect("mylines:list")
