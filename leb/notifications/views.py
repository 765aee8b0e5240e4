"""The notification centre and the notification preferences page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from leb.common import clock

from .actions import do_rotate_webhook_secret, do_save_notification_preferences
from .forms import PreferencesForm
from .models import NotificationPreference
from .queries import centre_entry, lines_needing_top_up, notifications_of
from .webhooks import webhook_secret

PAGE_SIZE = 20

private = cache_control(private=True, no_store=True)


@require_safe
@login_required
@private
def centre_view(request: HttpRequest) -> HttpResponse:
    paginator = Paginator(notifications_of(request.user), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    now = clock.now()
    entries = []
    for row in page.object_list:
        row.user = request.user  # the owner: no query per row
        entries.append(centre_entry(row, now))
    context = {
        "page": page,
        "entries": entries,
        "now": now,
        "urgent_lines": lines_needing_top_up(request.user, now),
    }
    return render(request, "notifications/centre.html", context)


def _preference(user: Any) -> NotificationPreference | None:
    return NotificationPreference.objects.filter(user=user).first()


def _initial(user: Any, prefs: NotificationPreference | None) -> dict[str, object]:
    if prefs is None:
        profile = getattr(user, "profile", None)
        return {
            "email_enabled": bool(getattr(user, "email", "")),
            "sms_enabled": bool(getattr(profile, "phone", "")),
        }
    return {
        "email_enabled": prefs.email_enabled,
        "email_address": prefs.email_address,
        "sms_enabled": prefs.sms_enabled,
        "sms_number": prefs.sms_number,
        "webhook_url": prefs.webhook_url,
        "quiet_start": prefs.quiet_start,
        "quiet_end": prefs.quiet_end,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
@private
def preferences_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    prefs = _preference(user)
    status = 200
    if request.method == "POST":
        form = PreferencesForm(request.POST, user=user)
        if form.is_valid():
            do_save_notification_preferences(user, **form.cleaned_data)
            messages.success(request, _("Your notification preferences are saved."))
            return redirect("notifications:preferences")
        status = 400
    else:
        form = PreferencesForm(initial=_initial(user, prefs), user=user)
    version = prefs.webhook_secret_version if prefs is not None else 0
    context = {
        "form": form,
        "webhook_secret": webhook_secret(user.pk, version),
        "has_webhook": bool(prefs and prefs.webhook_url),
    }
    return render(request, "notifications/preferences.html", context, status=status)


@require_POST
@login_required
def rotate_secret_view(request: HttpRequest) -> HttpResponse:
    do_rotate_webhook_secret(request.user)
    messages.success(
        request, _("Your webhook signing secret was replaced. Update it on your server.")
    )
    return redirect("notifications:preferences")
