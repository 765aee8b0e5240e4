"""Portal pages. Thin: reads come from the domain queries."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from leb import clock
from leb.announcements.queries import latest_announcements
from leb.lines.queries import PublicLineStatus, public_line_status

from . import ratelimit
from .forms import QuickCheckForm


def home(request: HttpRequest) -> HttpResponse:
    now = clock.now()
    status_code = 200
    result: PublicLineStatus | None = None
    unknown = False
    limited = False
    limit, window = ratelimit.quick_check_limit()
    if request.method == "POST":
        form = QuickCheckForm(request.POST)
        if not ratelimit.hit("quick-check", ratelimit.client_ip(request), limit, window):
            limited = True
            status_code = 429
        elif form.is_valid():
            try:
                result = public_line_status(form.cleaned_data["number"], now)
            except ValidationError as exc:
                form.add_error("number", exc)
            else:
                unknown = result is None
    else:
        form = QuickCheckForm()
    context = {
        "form": form,
        "result": result,
        "unknown": unknown,
        "limited": limited,
        "latest": latest_announcements(now),
        "now": now,
    }
    response = render(request, "portal/home.html", context, status=status_code)
    if limited:
        response["Retry-After"] = str(window)
    return response


def help_page(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/help.html")
