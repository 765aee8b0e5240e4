"""Portal pages. Thin: reads come from the domain queries."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from leb.announcements.promotions import promotion_text
from leb.announcements.queries import latest_announcements
from leb.catalog.queries import current_promotions
from leb.common import clock, ratelimit
from leb.common.formatting import user_timezone
from leb.lines import lifecycle
from leb.lines.models import Line, NumberPolicy
from leb.lines.queries import PublicLineStatus, live_line_for_number, public_line_status
from leb.topups.links import top_up_url

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
    # The line behind a found number, for its urgency and its own top-up link;
    # the page still shows no balance and no owner.
    line: Line | None = live_line_for_number(result.msisdn) if result is not None else None
    tz = user_timezone(request)
    context = {
        "form": form,
        "result": result,
        "unknown": unknown,
        "limited": limited,
        "latest": latest_announcements(now, tz),
        "promotions": [promotion_text(view, tz) for view in current_promotions(now)],
        "now": now,
        "quick_line": line,
        "quick_needs_top_up": line is not None and lifecycle.urgency(line, now).needs_top_up,
        "quick_top_up_url": top_up_url(line.pk) if line is not None else "",
    }
    response = render(request, "portal/home.html", context, status=status_code)
    if limited:
        response["Retry-After"] = str(window)
    return response


def help_page(request: HttpRequest) -> HttpResponse:
    # The lifecycle timers are data: the page shows each card type's own numbers.
    policies = NumberPolicy.objects.order_by("name")
    return render(request, "portal/help.html", {"policies": policies})
